//go:build linux

package sock

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// SetNoDelay disables Nagle's algorithm on fd: a proxy forwards what it
// got at once, and delaying small writes would add latency to every
// request/response protocol behind it.
func SetNoDelay(fd int) error {
	return setInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}

// SetKeepAlive enables TCP keepalive on fd so dead peers behind NAT or a
// crashed host are found. idle and interval are rounded up to whole
// seconds (the kernel's unit); idle, interval or count below 1 leave that
// parameter at the kernel default (net.ipv4.tcp_keepalive_*).
func SetKeepAlive(fd int, idle, interval time.Duration, count int) error {
	if err := setInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return err
	}
	params := []struct {
		opt, value int
	}{
		{unix.TCP_KEEPIDLE, ceilSeconds(idle)},
		{unix.TCP_KEEPINTVL, ceilSeconds(interval)},
		{unix.TCP_KEEPCNT, count},
	}
	for _, p := range params {
		if p.value < 1 {
			continue
		}
		if err := setInt(fd, unix.IPPROTO_TCP, p.opt, p.value); err != nil {
			return err
		}
	}
	return nil
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// SetOOBInline makes TCP urgent data arrive inline on fd, in its place in
// the stream, instead of out of band. A relay has no out-of-band channel
// to pass the byte on through, and without it the urgent byte would be
// lost; Linux copies the setting from a listener to the sockets it
// accepts.
func SetOOBInline(fd int) error {
	return setInt(fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
}

// AtUrgentMark reports whether the next byte to read from fd is TCP urgent
// data (SIOCATMARK); false on any error.
func AtUrgentMark(fd int) bool {
	n, err := unix.IoctlGetInt(fd, unix.SIOCATMARK)
	return err == nil && n != 0
}

// Unread returns the bytes waiting to be read on the TCP socket fd
// (SIOCINQ), or 0 when it cannot tell.
func Unread(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}

// SetLingerZero makes close(fd) abort the connection with a RST instead of
// a FIN, discarding unsent data: how a reset seen on one side of a relay
// is passed on to the other.
func SetLingerZero(fd int) error {
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

func setInt(fd, level, opt, value int) error {
	if err := unix.SetsockoptInt(fd, level, opt, value); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// SetIncomingCPU sets SO_INCOMING_CPU on fd, a listening socket of a
// SO_REUSEPORT group: from Linux 6.2 on, the kernel hands a new connection
// to the socket of the group whose CPU is the one processing the
// connection's SYN, when there is one, and hashes otherwise. A cpu of -1
// clears the setting.
func SetIncomingCPU(fd, cpu int) error {
	return setInt(fd, unix.SOL_SOCKET, unix.SO_INCOMING_CPU, cpu)
}

// IncomingCPU returns fd's SO_INCOMING_CPU: for a connected socket, the
// CPU that last processed a packet for it; -1 when none has.
func IncomingCPU(fd int) (int, error) {
	n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_INCOMING_CPU)
	if err != nil {
		return -1, os.NewSyscallError("getsockopt", err)
	}
	return n, nil
}
