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
