//go:build linux

package sock_test

import (
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
)

// BoundAddr reports the local end of a connected socket as Accept reports
// the peer: the client's own address on one end, the listener's on the
// other, unmapped for IPv4.
func TestBoundAddr(t *testing.T) {
	for _, addr := range []netip.AddrPort{loop4, loop6} {
		lfd, laddr := listen(t, addr, false)
		cfd := connect(t, laddr)
		sfd, peer := accept(t, lfd)

		server, err := sock.BoundAddr(sfd)
		if err != nil {
			t.Fatalf("BoundAddr(server end): %v", err)
		}
		if server != laddr {
			t.Errorf("BoundAddr(server end) = %v; want the listener's %v", server, laddr)
		}
		client, err := sock.BoundAddr(cfd)
		if err != nil {
			t.Fatalf("BoundAddr(client end): %v", err)
		}
		if client != peer {
			t.Errorf("BoundAddr(client end) = %v; want %v, the peer Accept saw", client, peer)
		}
	}
	if _, err := sock.BoundAddr(-1); !errors.Is(err, unix.EBADF) {
		t.Errorf("BoundAddr(-1) = %v; want EBADF", err)
	}
}

// ClearError takes the pending error off a socket: a connected UDP socket
// that sent to a closed port holds ECONNREFUSED (from the ICMP port
// unreachable) until SO_ERROR is read.
func TestClearError(t *testing.T) {
	// A UDP socket bound on loopback, then closed, leaves a port nobody
	// answers on.
	probe, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(probe, sock.ToSockaddr(loop4)); err != nil {
		t.Fatal(err)
	}
	closed, err := sock.LocalAddr(probe)
	unix.Close(probe)
	if err != nil || !closed.Addr().IsLoopback() || closed.Port() == 0 {
		t.Fatalf("LocalAddr of the probe = %v, %v", closed, err)
	}

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, fd)
	if err := unix.Connect(fd, sock.ToSockaddr(closed)); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, []byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	if revents := waitReady(t, fd, unix.POLLIN); revents&unix.POLLERR == 0 {
		t.Fatalf("revents = %#x; want POLLERR from the port unreachable", revents)
	}
	sock.ClearError(fd)
	if soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
		t.Fatalf("SO_ERROR after ClearError = %v, %v; want 0", unix.Errno(soErr), err)
	}
}
