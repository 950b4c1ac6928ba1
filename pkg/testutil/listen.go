package testutil

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ListenRaw listens on a loopback port the kernel picks with the accept
// backlog given, on a socket made with SOCK_CLOEXEC and the extra socket
// flags (unix.SOCK_NONBLOCK, or 0), for a test that must accept, or not,
// with system calls of its own. The socket is closed when the test ends.
func ListenRaw(t testing.TB, backlog, flags int) (fd int, addr netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|flags, 0)
	if err != nil {
		t.Fatalf("ListenRaw: socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("ListenRaw: bind: %v", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatalf("ListenRaw: listen: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("ListenRaw: getsockname: %v", err)
	}
	in4 := sa.(*unix.SockaddrInet4)
	return fd, netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))
}

// FullListener is a loopback listener that never accepts, with its accept
// queue full, so the kernel drops the SYN of every further connect: the
// connect neither succeeds nor fails until the connector gives up, or
// (TCP retransmits a SYN after a second) until the test accepts from fd
// to make room.
func FullListener(t testing.TB) (fd int, addr netip.AddrPort) {
	t.Helper()
	fd, addr = ListenRaw(t, 0, 0)
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err != nil {
			return fd, addr // the queue is full: this connect's SYN was dropped
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("FullListener: could not fill the accept queue")
	return fd, addr
}
