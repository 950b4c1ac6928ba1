//go:build linux

package sock

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockFlags are or-ed into every socket type: the loop never blocks and a
// child process never inherits a client connection.
const sockFlags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC

// Listen returns a non-blocking TCP listening socket bound to addr, with
// SO_REUSEADDR (restart without waiting for TIME_WAIT), SO_REUSEPORT when
// reusePort is set (one listener per event loop, balanced by the kernel),
// and IPV6_V6ONLY for IPv6 addresses so "[::]" and "0.0.0.0" on the same
// port are separate listeners. A backlog below 1 means SOMAXCONN.
func Listen(addr netip.AddrPort, backlog int, reusePort bool) (fd int, err error) {
	fd, err = bound(addr, unix.SOCK_STREAM, reusePort)
	if err != nil {
		return -1, err
	}
	if backlog < 1 {
		backlog = unix.SOMAXCONN
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", addr, os.NewSyscallError("listen", err))
	}
	return fd, nil
}

// ListenUDP returns a non-blocking UDP socket bound to addr with the same
// options as Listen.
func ListenUDP(addr netip.AddrPort, reusePort bool) (fd int, err error) {
	return bound(addr, unix.SOCK_DGRAM, reusePort)
}

// bound creates a socket of typ for addr, sets the listener options and
// binds it. The fd is closed on any error.
func bound(addr netip.AddrPort, typ int, reusePort bool) (int, error) {
	sa := ToSockaddr(addr)
	if sa == nil {
		return -1, fmt.Errorf("bind %s: invalid address", addr)
	}
	fd, err := unix.Socket(family(addr), typ|sockFlags, 0)
	if err != nil {
		return -1, fmt.Errorf("bind %s: %w", addr, os.NewSyscallError("socket", err))
	}
	type option struct {
		on         bool
		level, opt int
		name       string
	}
	opts := []option{
		{true, unix.SOL_SOCKET, unix.SO_REUSEADDR, "SO_REUSEADDR"},
		{reusePort, unix.SOL_SOCKET, unix.SO_REUSEPORT, "SO_REUSEPORT"},
		{family(addr) == unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, "IPV6_V6ONLY"},
	}
	for _, o := range opts {
		if !o.on {
			continue
		}
		if err := unix.SetsockoptInt(fd, o.level, o.opt, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("bind %s: set %s: %w", addr, o.name, os.NewSyscallError("setsockopt", err))
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", addr, os.NewSyscallError("bind", err))
	}
	return fd, nil
}

// Accept takes one pending connection from the listening socket lfd and
// returns it non-blocking and close-on-exec with the peer's address. EINTR
// is retried. Every error is the bare errno (no allocation): EAGAIN when
// the queue is empty, EMFILE/ENFILE when out of fds, ECONNABORTED when the
// peer gave up while queued; test them with errors.Is.
//
// It calls accept4(2) directly rather than through unix.Accept4, which
// follows every accept with a getsockopt(SO_PROTOCOL) and allocates the
// peer's Sockaddr: a syscall and an allocation per connection saved.
func Accept(lfd int) (fd int, peer netip.AddrPort, err error) {
	var rsa unix.RawSockaddrAny
	size := uint32(unix.SizeofSockaddrAny)
	r, err := Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)),
		uintptr(unsafe.Pointer(&size)), sockFlags, 0, 0)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	return int(r), rawPeer(&rsa), nil
}

// rawPeer decodes an accepted peer address as FromSockaddr does, without
// building a Sockaddr first.
func rawPeer(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), portOf(&sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		addr := netip.AddrFrom16(sa.Addr)
		if addr.Is4In6() {
			return netip.AddrPortFrom(addr.Unmap(), portOf(&sa.Port))
		}
		if sa.Scope_id != 0 {
			addr = addr.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(addr, portOf(&sa.Port))
	}
	return netip.AddrPort{}
}

// portOf reads a port stored in network byte order, on any host order.
func portOf(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// Connect starts a non-blocking TCP connect to addr. When the handshake
// cannot complete at once it returns inProgress=true and a nil error; the
// caller waits for EPOLLOUT on fd and then calls ConnectError. An error
// that connect reports immediately (ECONNREFUSED, ENETUNREACH, ...) closes
// the fd and is returned wrapped; fd is then -1.
func Connect(addr netip.AddrPort) (fd int, inProgress bool, err error) {
	sa := ToSockaddr(addr)
	if sa == nil {
		return -1, false, fmt.Errorf("connect %s: invalid address", addr)
	}
	fd, err = unix.Socket(family(addr), unix.SOCK_STREAM|sockFlags, 0)
	if err != nil {
		return -1, false, fmt.Errorf("connect %s: %w", addr, os.NewSyscallError("socket", err))
	}
	switch err := unix.Connect(fd, sa); err {
	case nil:
		return fd, false, nil
	case unix.EINPROGRESS, unix.EINTR:
		// An interrupted non-blocking connect goes on in the kernel
		// exactly like one in progress; retrying would get EALREADY.
		return fd, true, nil
	default:
		unix.Close(fd)
		return -1, false, fmt.Errorf("connect %s: %w", addr, os.NewSyscallError("connect", err))
	}
}

// ConnectError reports the outcome of a non-blocking connect once fd is
// writable: nil when connected, else the pending socket error as a bare
// unix.Errno (ECONNREFUSED, ETIMEDOUT, ...), or the wrapped getsockopt
// error. Reading SO_ERROR clears it, so call it once per connect.
func ConnectError(fd int) error {
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if soErr != 0 {
		return unix.Errno(soErr)
	}
	return nil
}

// ShutdownWrite sends FIN to the peer while leaving fd readable: the
// half-close that forwards one side's EOF to the other.
func ShutdownWrite(fd int) error {
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		return os.NewSyscallError("shutdown", err)
	}
	return nil
}

// Recv reads from the connected socket fd into p with recv(2) flags:
// MSG_PEEK looks at the queued bytes without taking them. It returns the
// bytes read, 0 at EOF, or the bare errno (EAGAIN when nothing is queued);
// EINTR is retried. A raw syscall, as the relay's own reads are.
func Recv(fd int, p []byte, flags int) (int, error) {
	r, err := Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))),
		uintptr(len(p)), uintptr(flags), 0, 0)
	if err != nil {
		return 0, err
	}
	return int(r), nil
}

// BoundAddr returns the local address of the connected socket fd
// (getsockname) as Accept returns peers: an IPv4-mapped address unmapped.
// Unlike LocalAddr it allocates nothing, for use once per connection.
func BoundAddr(fd int) (netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	size := uint32(unix.SizeofSockaddrAny)
	_, _, errno := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	return rawPeer(&rsa), nil
}
