package health

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// probeTCP passes when a TCP connection to addr opens before ctx is done.
//
// It is the probe a thousand backends are checked with every second, so it
// makes only the system calls the check needs, where net.Dialer makes
// twelve (four keep-alive options, TCP_NODELAY, two poller registrations,
// getsockname, getpeername) and parks the goroutine even when the
// handshake is already over:
//   - socket and a non-blocking connect, which starts the handshake;
//   - a second connect, which reports where it stands: 0 once the
//     handshake is done, EALREADY while it is on its way, or what ended it
//     (a refusal). Over loopback, and to any peer that answers within the
//     first connect, the handshake is done by then and nothing waits;
//   - only while it is on its way, a wait for the socket to turn
//     writable, in the runtime's poller, until ctx's deadline;
//   - the PROXY header the target expects, if any;
//   - close with SO_LINGER 0 (see probeConn.close).
//
// A zoned IPv6 address is dialled through net.Dialer, which resolves the
// zone.
func probeTCP(ctx context.Context, addr netip.AddrPort) (seen, error) {
	sa, family, ok := sockaddr(addr)
	if !ok {
		_, release, err := dial(ctx, "tcp", addr)
		if err != nil {
			return seen{}, err
		}
		release()
		return saw("connected"), nil
	}
	if err := ctx.Err(); err != nil {
		return seen{}, failed(ctx, "connect", err)
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return seen{}, failed(ctx, "connect", os.NewSyscallError("socket", err))
	}
	countOpen(ctx)
	c := probeConn{fd: fd}
	defer c.close()
	// Delayed acknowledgements from the start: the last ACK of the
	// handshake waits for data (or a timer), so the reset comes first
	// and the target's kernel drops the half-open connection without
	// ever handing it to the server (see probeConn.close).
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0)
	if err := c.connect(ctx, sa); err != nil {
		return seen{}, failed(ctx, "connect", err)
	}
	if p := preambleFor(ctx, addr); p != nil {
		if err := writeAll(fd, p); err != nil {
			return seen{}, failed(ctx, "PROXY header", err)
		}
	}
	return saw("connected"), nil
}

// probeConn is the socket of a TCP probe.
type probeConn struct {
	fd int
	// f owns fd once the probe had to wait for the handshake in the
	// runtime's poller; nil until then.
	f *os.File
}

// connect connects the socket to sa before ctx is done.
func (c *probeConn) connect(ctx context.Context, sa unix.Sockaddr) error {
	err := unix.Connect(c.fd, sa)
	for err == unix.EINTR {
		err = unix.Connect(c.fd, sa)
	}
	switch err {
	case nil:
		return nil
	case unix.EINPROGRESS:
		if err = c.reconnect(sa); err == unix.EALREADY {
			err = c.wait(ctx, sa)
		}
	}
	if errno, ok := err.(unix.Errno); ok {
		return os.NewSyscallError("connect", errno)
	}
	return err
}

// reconnect asks the kernel how the socket's connect stands by connecting
// again: nil once connected (0, or EISCONN if asked before), EALREADY
// while the handshake is on its way, or the error that ended it.
func (c *probeConn) reconnect(sa unix.Sockaddr) error {
	err := unix.Connect(c.fd, sa)
	for err == unix.EINTR {
		err = unix.Connect(c.fd, sa)
	}
	if err == unix.EISCONN {
		return nil
	}
	return err
}

// wait waits in the runtime's poller until the handshake ends or ctx is
// done; from then on c.f owns the socket.
func (c *probeConn) wait(ctx context.Context, sa unix.Sockaddr) error {
	c.f = os.NewFile(uintptr(c.fd), "health probe")
	if dl, ok := ctx.Deadline(); ok {
		if err := c.f.SetWriteDeadline(dl); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { c.f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var result error
	if err := rc.Write(func(uintptr) bool {
		result = c.reconnect(sa)
		return result != unix.EALREADY
	}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // cancelled, not timed out, when it is so
		}
		return err
	}
	return result
}

// close resets the connection (SO_LINGER 0) and closes the socket. A
// reset, not a FIN, as HAProxy ends its connect checks: the target reads
// nothing either way, and no TIME_WAIT socket stays behind on this host
// for every probe. A refused socket has nothing to reset and closes the
// same way.
func (c *probeConn) close() {
	_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	if c.f != nil {
		c.f.Close()
		return
	}
	unix.Close(c.fd)
}

// writeAll writes p to the just-connected fd, whose empty send buffer
// takes a PROXY header whole.
func writeAll(fd int, p []byte) error {
	n, err := unix.Write(fd, p)
	for err == unix.EINTR {
		n, err = unix.Write(fd, p)
	}
	switch {
	case err != nil:
		return os.NewSyscallError("write", err)
	case n < len(p):
		return errors.New("short write")
	}
	return nil
}

// sockaddr is addr as a socket address and its family; false for a zoned
// IPv6 address.
func sockaddr(addr netip.AddrPort) (unix.Sockaddr, int, bool) {
	ip := addr.Addr()
	switch {
	case ip.Is4() || ip.Is4In6():
		return &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.Unmap().As4()}, unix.AF_INET, true
	case ip.Is6() && ip.Zone() == "":
		return &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}, unix.AF_INET6, true
	}
	return nil, 0, false
}
