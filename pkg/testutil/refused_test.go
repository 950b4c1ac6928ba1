package testutil

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestRefusedAddrTCP: a connect is refused, and the port cannot be bound
// by anyone, wildcard and SO_REUSEADDR (which net.Listen sets) included,
// until the test that asked for it ends.
func TestRefusedAddrTCP(t *testing.T) {
	var addr netip.AddrPort
	t.Run("held", func(t *testing.T) {
		addr = RefusedAddr(t, "tcp")
		if !addr.Addr().IsLoopback() || addr.Port() == 0 {
			t.Fatalf("address %v", addr)
		}
		for i := 0; i < 3; i++ {
			c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("connect %v: %v, want connection refused", addr, err)
			}
		}
		for _, bind := range []string{addr.String(), netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port()).String()} {
			if ln, err := net.Listen("tcp", bind); !errors.Is(err, syscall.EADDRINUSE) {
				if ln != nil {
					ln.Close()
				}
				t.Errorf("listen on %s while held: %v, want address in use", bind, err)
			}
		}
	})
	// The test ended: the port is free again.
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatalf("listen on %v after the test: %v", addr, err)
	}
	ln.Close()
}

// TestRefusedAddrUDP: a datagram draws a port unreachable, which the
// sender's connected socket reads as refused, and the port cannot be bound
// until the test that asked for it ends.
func TestRefusedAddrUDP(t *testing.T) {
	var addr netip.AddrPort
	t.Run("held", func(t *testing.T) {
		addr = RefusedAddr(t, "udp")
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("read after a send to %v: %v, want connection refused", addr, err)
		}
		if pc, err := net.ListenPacket("udp", addr.String()); !errors.Is(err, syscall.EADDRINUSE) {
			if pc != nil {
				pc.Close()
			}
			t.Errorf("bind %v while held: %v, want address in use", addr, err)
		}
	})
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		t.Fatalf("bind %v after the test: %v", addr, err)
	}
	pc.Close()
}

// TestReserveTCP: while reserved, the port refuses connects and cannot be
// bound without SO_REUSEADDR; a listener (net.Listen sets SO_REUSEADDR)
// serves there, and again once the first one closed.
func TestReserveTCP(t *testing.T) {
	addr := ReserveTCP(t)
	if !addr.Addr().IsLoopback() || addr.Port() == 0 {
		t.Fatalf("address %v", addr)
	}
	if c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("connect %v before a server: %v, want connection refused", addr, err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())})
	syscall.Close(fd)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind without SO_REUSEADDR: %v, want address in use", err)
	}
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", addr.String())
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
		if err != nil {
			ln.Close()
			t.Fatalf("connect to server %d: %v", i, err)
		}
		c.Close()
		ln.Close()
	}
}
