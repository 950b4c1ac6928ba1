package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/proxyproto"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// startServer serves ln with handle until the test ends.
func startServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := acceptLoop(ctx, ln, handle); err != nil {
			t.Errorf("acceptLoop: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestLoadThroughIOCopy drives every load shape through the io.Copy proxy
// in front of the echo server, both in-process on real loopback sockets.
func TestLoadThroughIOCopy(t *testing.T) {
	echoAddr := startServer(t, echoConn)
	proxyAddr := startServer(t, func(c net.Conn) { proxyConn(c, echoAddr) })
	ctx := context.Background()

	for name, addr := range map[string]string{"direct": echoAddr, "iocopy": proxyAddr} {
		t.Run(name, func(t *testing.T) {
			cr := connectionRate(ctx, addr, 4, 200*time.Millisecond)
			if cr.ops == 0 || cr.errors != 0 || cr.err != nil {
				t.Errorf("connection rate: %d ok, %d failed (%v)", cr.ops, cr.errors, cr.err)
			}
			if cr.elapsed < 200*time.Millisecond || cr.rate() <= 0 {
				t.Errorf("connection rate elapsed %v, rate %v", cr.elapsed, cr.rate())
			}

			rr, err := requestResponse(ctx, addr, 3, 200*time.Millisecond)
			if err != nil {
				t.Fatalf("request/response: %v", err)
			}
			if rr.ops == 0 || rr.errors != 0 || rr.hist.total != uint64(rr.ops) {
				t.Errorf("request/response: %d requests, %d errors, %d latencies", rr.ops, rr.errors, rr.hist.total)
			}
			if p50, p99 := rr.hist.percentile(50), rr.hist.percentile(99); p50 <= 0 || p99 < p50 {
				t.Errorf("p50 %v, p99 %v", p50, p99)
			}

			set := holdIdle(ctx, addr, 20)
			defer set.close()
			if set.held != 20 || set.errors != 0 {
				t.Fatalf("idle: held %d of 20, %d errors (%v)", set.held, set.errors, set.err)
			}
			// The held connections still relay after the others.
			in := make([]byte, 2)
			if err := echo(set.conns[19], []byte("ok"), in); err != nil {
				t.Fatalf("echo on a held connection: %v", err)
			}
		})
	}
}

func TestLoadAgainstClosedPort(t *testing.T) {
	addr := testutil.RefusedAddr(t, "tcp").String()
	ctx := context.Background()

	cr := connectionRate(ctx, addr, 2, 100*time.Millisecond)
	if cr.ops != 0 || cr.errors == 0 || !errors.Is(cr.err, syscall.ECONNREFUSED) {
		t.Errorf("connection rate to a closed port: %d ok, %d failed, err %v", cr.ops, cr.errors, cr.err)
	}
	if _, err := requestResponse(ctx, addr, 2, 100*time.Millisecond); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("request/response error = %v, want ECONNREFUSED", err)
	}
	set := holdIdle(ctx, addr, 5)
	if set.held != 0 || set.errors != 5 || !errors.Is(set.err, syscall.ECONNREFUSED) {
		t.Errorf("idle: held %d, %d errors, err %v", set.held, set.errors, set.err)
	}
}

func TestEchoMismatch(t *testing.T) {
	// A backend that answers with other bytes must be caught.
	addr := startServer(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4)
		if _, err := c.Read(buf); err == nil {
			c.Write([]byte("nope"))
		}
	})
	dialer := net.Dialer{Timeout: opTimeout}
	err := echoOnce(context.Background(), &dialer, addr, []byte("ping"), make([]byte, 4))
	if !errors.Is(err, errEchoMismatch) {
		t.Fatalf("echoOnce error = %v, want errEchoMismatch", err)
	}
}

// TestEchoProxy: the PROXY echo server strips a v1 or v2 header and echoes
// the rest, and closes a connection that sends none.
func TestEchoProxy(t *testing.T) {
	addr := startServer(t, echoProxyConn)
	src, dst := netip.MustParseAddrPort("192.0.2.1:1000"), netip.MustParseAddrPort("192.0.2.2:80")
	for _, hdr := range [][]byte{
		proxyproto.AppendV1(nil, src, dst),
		proxyproto.AppendV2(nil, &proxyproto.Header{Command: proxyproto.Proxy, Source: src, Destination: dst}, true),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(append(hdr, "hello"...))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Errorf("echo after %q: %q, %v", hdr, buf, err)
		}
		c.Close()
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("hello, no header\r\n"))
	if n, err := c.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Errorf("without a header: %d bytes, %v; want the connection closed", n, err)
	}
}

// TestPacedKeepsItsRate offers 400 requests a second over eight
// connections for a second: every one of the 400 scheduled completes, late
// ones included, and none beyond the schedule.
func TestPacedKeepsItsRate(t *testing.T) {
	addr := startServer(t, echoConn)
	set := holdIdle(context.Background(), addr, 8)
	defer set.close()
	if set.held != 8 {
		t.Fatalf("held %d of 8: %v", set.held, set.err)
	}
	res := paced(context.Background(), set.conns, 400, time.Second)
	if res.errors != 0 {
		t.Fatalf("%d errors: %v", res.errors, res.err)
	}
	// 8 connections × 50 requests each.
	if res.ops != 400 {
		t.Errorf("%d requests in a second at 400/s offered", res.ops)
	}
}
