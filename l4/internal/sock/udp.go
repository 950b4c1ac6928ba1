//go:build linux

package sock

import (
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxDatagram is the largest UDP payload over IPv4 or IPv6 without jumbo
// frames; buffers of this size never truncate a datagram.
const MaxDatagram = 65535

// Raw socket addresses are read and written as a RawSockaddrInet6, which
// is large enough for either family.
const sockaddrLen = unix.SizeofSockaddrInet6

// ctrlSpace is the control buffer of one datagram: room for an IP_PKTINFO
// or IPV6_PKTINFO message, whichever is larger, and an SO_RXQ_OVFL count.
var ctrlSpace = max(unix.CmsgSpace(unix.SizeofInet4Pktinfo), unix.CmsgSpace(unix.SizeofInet6Pktinfo)) +
	unix.CmsgSpace(4)

// UDPSocket returns a non-blocking, close-on-exec UDP socket of the family
// of remote, for sending to remote. The kernel binds it to an ephemeral
// port at its first send, which saves a bind call per flow; with the port
// range used up, that first send fails with EAGAIN. The socket is not
// connected: the caller checks the
// source of every datagram it reads, so a reply from any address other
// than remote is seen and can be counted, where a connected socket would
// have the kernel drop it unseen. ICMP errors are queued on the socket's
// error queue (IP_RECVERR), where ReadError finds them; epoll reports them
// as EPOLLERR.
func UDPSocket(remote netip.AddrPort) (int, error) {
	fd, err := unix.Socket(family(remote), unix.SOCK_DGRAM|sockFlags, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	level, opt := unix.IPPROTO_IP, unix.IP_RECVERR
	if family(remote) == unix.AF_INET6 {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_RECVERR
	}
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	return fd, nil
}

// EnablePktinfo asks the kernel to report the destination address of every
// datagram received on fd, a socket bound to a wildcard address, so that
// replies can leave from the address the client wrote to.
func EnablePktinfo(fd int, addr netip.AddrPort) error {
	level, opt := unix.IPPROTO_IP, unix.IP_PKTINFO
	if family(addr) == unix.AF_INET6 {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO
	}
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		return fmt.Errorf("pktinfo on %s: %w", addr, os.NewSyscallError("setsockopt", err))
	}
	return nil
}

// SetReceiveBuffer asks for a receive buffer of size bytes on fd and returns
// what the kernel granted (which it reports doubled, for its bookkeeping;
// the figure returned is halved back). SO_RCVBUFFORCE is tried first, which
// may exceed net.core.rmem_max but needs CAP_NET_ADMIN; without it
// SO_RCVBUF is capped at rmem_max.
func SetReceiveBuffer(fd, size int) (int, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
			return 0, os.NewSyscallError("setsockopt SO_RCVBUF", err)
		}
	}
	got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return 0, os.NewSyscallError("getsockopt SO_RCVBUF", err)
	}
	return got / 2, nil
}

// EnableDropCount asks the kernel to report, with every datagram received
// on fd, how many it has dropped on that socket for want of buffer space
// (SO_RXQ_OVFL): drops that happen before the process sees anything.
func EnableDropCount(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_RXQ_OVFL", err)
	}
	return nil
}

// skMeminfoDrops is SK_MEMINFO_DROPS (linux/sock_diag.h), the index of the
// drop count in the array SO_MEMINFO fills; x/sys does not export it.
const skMeminfoDrops = 8

// DropCount reads fd's drop count, the one SO_RXQ_OVFL attaches to every
// datagram, on demand (SO_MEMINFO). It is how a socket that has gone quiet
// reports the drops that came after the last datagram it queued.
func DropCount(fd int) (uint32, error) {
	var info [skMeminfoDrops + 1]uint32
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return 0, os.NewSyscallError("getsockopt SO_MEMINFO", errno)
	}
	if size < uint32(unsafe.Sizeof(info)) {
		return 0, fmt.Errorf("getsockopt SO_MEMINFO: %d bytes, want %d", size, unsafe.Sizeof(info))
	}
	return info[skMeminfoDrops], nil
}

// RawAddr is a socket address in kernel form, built once and passed to
// every send without conversion or allocation.
type RawAddr struct {
	sa  unix.RawSockaddrInet6
	len uint32
}

// MakeRawAddr encodes ap; an invalid ap yields a zero-length address.
func MakeRawAddr(ap netip.AddrPort) RawAddr {
	var r RawAddr
	r.set(ap)
	return r
}

func (r *RawAddr) set(ap netip.AddrPort) {
	addr := ap.Addr().Unmap()
	port := ap.Port()
	switch {
	case addr.Is4():
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.sa))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: addr.As4()}
		putPort(&sa.Port, port)
		r.len = unix.SizeofSockaddrInet4
	case addr.Is6():
		r.sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: addr.As16(), Scope_id: zoneIndex(addr.Zone())}
		putPort(&r.sa.Port, port)
		r.len = unix.SizeofSockaddrInet6
	default:
		r.len = 0
	}
}

// peer6 decodes a received address stored in a RawSockaddrInet6, which
// holds either family, as rawPeer does.
func peer6(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), portOf(&sa4.Port))
	case unix.AF_INET6:
		var any unix.RawSockaddrAny
		*(*unix.RawSockaddrInet6)(unsafe.Pointer(&any)) = *sa
		return rawPeer(&any)
	}
	return netip.AddrPort{}
}

// putPort stores port in network byte order, on any host order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// SendTo sends p to addr as one datagram. EINTR is retried; other errors
// are the bare errno (EAGAIN when the send buffer is full).
func SendTo(fd int, p []byte, addr *RawAddr) error {
	var base unsafe.Pointer
	if len(p) > 0 {
		base = unsafe.Pointer(&p[0])
	}
	_, err := Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(base), uintptr(len(p)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&addr.sa)), uintptr(addr.len))
	return err
}

// RecvFrom reads one datagram into p, which should be MaxDatagram long
// (a longer datagram is cut to len(p)), and returns its length and
// source. EINTR is retried; other errors are the bare errno (EAGAIN when
// nothing is queued).
func RecvFrom(fd int, p []byte) (n int, from netip.AddrPort, err error) {
	var rsa unix.RawSockaddrAny
	size := uint32(unix.SizeofSockaddrAny)
	r, err := Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size)))
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return int(r), rawPeer(&rsa), nil
}

// ICMPError is one error taken off a socket's error queue.
type ICMPError struct {
	// Errno is what the kernel made of it: ECONNREFUSED for a port
	// unreachable, EHOSTUNREACH, ENETUNREACH and the like for others,
	// EMSGSIZE for "fragmentation needed".
	Errno unix.Errno
	// ICMP is set when the error came from an ICMP or ICMPv6 message, as
	// opposed to one the local stack raised.
	ICMP bool
	// To is where the datagram that caused it was going.
	To netip.AddrPort
}

// ReadError takes one error off fd's error queue (MSG_ERRQUEUE). It returns
// EAGAIN once the queue is empty. Taking the last error also clears the
// socket's pending error, so epoll stops reporting EPOLLERR.
func ReadError(fd int) (ICMPError, error) {
	var data [64]byte // the quoted datagram is not needed
	var oob [128]byte
	var name unix.RawSockaddrInet6
	iov := unix.Iovec{Base: &data[0]}
	iov.SetLen(len(data))
	msg := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&name)), Namelen: sockaddrLen, Iov: &iov, Control: &oob[0]}
	msg.Iovlen = 1
	msg.SetControllen(len(oob))
	if _, err := Syscall6(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)),
		unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT, 0, 0, 0); err != nil {
		return ICMPError{}, err
	}
	e := extendedErr(oob[:msg.Controllen])
	e.To = peer6(&name)
	return e, nil
}

// ClearError reads and so clears fd's pending socket error (SO_ERROR):
// for an EPOLLERR with nothing on the error queue, which epoll would
// otherwise report for ever.
func ClearError(fd int) {
	_, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
}

// extendedErr decodes the sock_extended_err of an IP_RECVERR or
// IPV6_RECVERR control message; EIO, not from ICMP, when there is none.
func extendedErr(oob []byte) ICMPError {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return ICMPError{Errno: unix.EIO}
	}
	for _, m := range msgs {
		ip4 := m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR
		ip6 := m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if (ip4 || ip6) && len(m.Data) >= int(unsafe.Sizeof(unix.SockExtendedErr{})) {
			ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
			return ICMPError{
				Errno: unix.Errno(ee.Errno),
				ICMP:  ee.Origin == unix.SO_EE_ORIGIN_ICMP || ee.Origin == unix.SO_EE_ORIGIN_ICMP6,
			}
		}
	}
	return ICMPError{Errno: unix.EIO}
}
