package testutil

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// RefusedAddr returns an address on 127.0.0.1 where nothing answers over
// network ("tcp" or "udp"): a connect there is refused, and a datagram
// draws an ICMP port unreachable, which a connected UDP socket reads as
// "connection refused".
//
// The port stays taken until t ends, so no test running at the same time
// can start serving on it (an address found free, then let go, could be
// taken before the caller uses it). A socket holds it that is bound but
// serves nothing: over TCP it never listens, so the kernel resets every
// connect; over UDP it is connected to its own address, so no datagram from
// another socket is delivered to it. It is bound without SO_REUSEADDR or
// SO_REUSEPORT, so no other socket can bind the port, not even on the
// wildcard address, and the kernel's choice of a port for a bind to port 0
// or for a connect skips it.
func RefusedAddr(t testing.TB, network string) netip.AddrPort {
	t.Helper()
	typ := unix.SOCK_STREAM
	switch network {
	case "tcp":
	case "udp":
		typ = unix.SOCK_DGRAM
	default:
		t.Fatalf("RefusedAddr: network %q, want tcp or udp", network)
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("RefusedAddr: socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	loopback := [4]byte{127, 0, 0, 1}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback}); err != nil {
		t.Fatalf("RefusedAddr: bind: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("RefusedAddr: getsockname: %v", err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	if network == "udp" {
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: loopback, Port: port}); err != nil {
			t.Fatalf("RefusedAddr: connect: %v", err)
		}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(loopback), uint16(port))
}

// HoldPort keeps addr's port (an IPv4 address) from every other socket
// while a server that owns it is down, and answers as a closed port does:
// a TCP socket bound there and not listening refuses connects, and a UDP
// socket bound there and connected to itself makes the kernel answer other
// senders with port unreachable. Without it, any ephemeral socket of the
// machine may take the port meanwhile and the server cannot come back on
// it. release gives the port back, for the server to bind; it may be
// called more than once, and the test's cleanup calls it.
func HoldPort(t testing.TB, addr netip.AddrPort) (release func()) {
	t.Helper()
	sa := &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}
	var fds []int
	release = func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
		fds = nil
	}
	t.Cleanup(release)
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
		fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("HoldPort: socket: %v", err)
		}
		fds = append(fds, fd)
		if err := unix.Bind(fd, sa); err != nil {
			t.Fatalf("HoldPort %v: bind: %v", addr, err)
		}
		if typ == unix.SOCK_DGRAM {
			if err := unix.Connect(fd, sa); err != nil {
				t.Fatalf("HoldPort %v: connect: %v", addr, err)
			}
		}
	}
	return release
}
