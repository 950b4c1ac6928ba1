package demo

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestGreetsAndEchoes(t *testing.T) {
	stop, err := StartAll(context.Background(), []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	s, err := Start(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello from demo backend " + s.Addr().String() + "\n"; line != want {
		t.Fatalf("greeting %q, want %q", line, want)
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	echo, err := r.ReadString('\n')
	if err != nil || echo != "ping\n" {
		t.Fatalf("echo %q, %v", echo, err)
	}
	// Close ends open connections: the client sees EOF.
	s.Close()
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after Close: %v, want EOF", err)
	}
}

// StartAll stops at the first address it cannot listen on and closes the
// backends it had started: their ports are free again.
func TestStartAllUndoesOnError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := netip.MustParseAddrPort(free.Addr().String())
	free.Close()

	stop, err := StartAll(context.Background(), []netip.AddrPort{first, netip.MustParseAddrPort(busy.Addr().String())})
	if err == nil {
		stop()
		t.Fatal("StartAll on an address in use succeeded")
	}
	if stop != nil {
		t.Error("StartAll returned a stop function with its error")
	}
	again, err := net.Listen("tcp", first.String())
	if err != nil {
		t.Fatalf("the first backend's port is still taken after the failed StartAll: %v", err)
	}
	again.Close()
}

// A cancelled context starts nothing.
func TestStartAllCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stop, err := StartAll(ctx, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")})
	if err != context.Canceled || stop != nil {
		t.Fatalf("StartAll(cancelled) = %v, %v; want nil, context.Canceled", stop != nil, err)
	}
}
