package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// startUDPEcho runs the udpecho server's code on two SO_REUSEPORT sockets
// of a loopback port. stop ends it and returns how many datagrams it
// echoed; it also runs at the end of the test.
func startUDPEcho(t *testing.T) (addr string, stop func() int) {
	t.Helper()
	conns, err := listenUDPEcho("127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var echoed int
	var serr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		echoed, serr = serveUDPEcho(ctx, conns)
	}()
	stop = sync.OnceValue(func() int {
		cancel()
		<-done
		if serr != nil {
			t.Errorf("serveUDPEcho: %v", serr)
		}
		return echoed
	})
	t.Cleanup(func() { stop() })
	return conns[0].LocalAddr().String(), stop
}

// startUDPServer serves a loopback UDP socket, sending back to each
// datagram's sender the datagrams reply returns for it. stop ends it and
// returns how many datagrams it read; it also runs at the end of the test.
func startUDPServer(t *testing.T, reply func(req []byte) [][]byte) (addr string, stop func() int) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	received := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed by stop
			}
			received++
			for _, r := range reply(buf[:n]) {
				if _, err := c.WriteToUDPAddrPort(r, from); err != nil {
					t.Errorf("reply: %v", err)
				}
			}
		}
	}()
	stop = sync.OnceValue(func() int {
		c.Close()
		<-done
		return received
	})
	t.Cleanup(func() { stop() })
	return c.LocalAddr().String(), stop
}

// TestUDPLoadAgainstEcho checks both UDP load shapes against the udpecho
// server: with at most one datagram in flight per socket nothing drops on
// loopback, so every request sent gets its reply, and the server echoed
// exactly what the clients counted.
func TestUDPLoadAgainstEcho(t *testing.T) {
	// A loopback echo loses nothing; on a loaded machine under the race
	// detector an echo can take longer than the bench's 200 ms, which
	// would count it lost.
	defer func(d time.Duration) { udpLossTimeout = d }(udpLossTimeout)
	udpLossTimeout = 5 * time.Second
	addr, stop := startUDPEcho(t)
	ctx := context.Background()

	rr, err := udpRequestResponse(ctx, addr, 4, 300*time.Millisecond)
	if err != nil {
		t.Fatalf("request/response: %v", err)
	}
	if rr.ops == 0 || rr.lost != 0 || rr.errors != 0 || rr.hist.total != uint64(rr.ops) {
		t.Errorf("request/response: %d replies, %d lost, %d errors (%v), %d latencies", rr.ops, rr.lost, rr.errors, rr.err, rr.hist.total)
	}
	if p50, p99 := rr.hist.percentile(50), rr.hist.percentile(99); p50 <= 0 || p99 < p50 {
		t.Errorf("p50 %v, p99 %v", p50, p99)
	}
	if rr.elapsed < 300*time.Millisecond || rr.rate() <= 0 || rr.lossPercent() != 0 {
		t.Errorf("request/response elapsed %v, rate %v, loss %v%%", rr.elapsed, rr.rate(), rr.lossPercent())
	}

	q, err := udpQueries(ctx, addr, 4, 300*time.Millisecond)
	if err != nil {
		t.Fatalf("queries: %v", err)
	}
	if q.ops == 0 || q.lost != 0 || q.errors != 0 || q.hist != nil {
		t.Errorf("queries: %d replies, %d lost, %d errors (%v)", q.ops, q.lost, q.errors, q.err)
	}

	if echoed, sent := stop(), rr.ops+rr.lost+q.ops+q.lost; echoed != sent {
		t.Errorf("server echoed %d datagrams, clients sent %d", echoed, sent)
	}
}

// TestUDPReplies drives both load shapes against servers that answer in
// the ways a proxy might: late, not at all, or wrongly.
func TestUDPReplies(t *testing.T) {
	seqOf := func(req []byte) uint64 { return binary.BigEndian.Uint64(req) }
	tests := []struct {
		name  string
		d     time.Duration
		reply func(req []byte) [][]byte
		// check judges a run of 2 workers; received is what the server read.
		check func(t *testing.T, res loadResult, received int)
	}{
		{
			name: "a late echo of an earlier request is skipped",
			d:    200 * time.Millisecond,
			reply: func(req []byte) [][]byte {
				stale := bytes.Clone(req)
				binary.BigEndian.PutUint64(stale, seqOf(req)-1)
				return [][]byte{stale, req}
			},
			check: func(t *testing.T, res loadResult, received int) {
				if res.ops == 0 || res.lost != 0 || res.errors != 0 || res.ops != received {
					t.Errorf("%d replies, %d lost, %d errors (%v); server read %d", res.ops, res.lost, res.errors, res.err, received)
				}
			},
		},
		{
			// Each worker's sequence starts at 1: its requests are lost
			// and answered in turn, the first lost.
			name: "odd sequence numbers dropped",
			d:    500 * time.Millisecond,
			reply: func(req []byte) [][]byte {
				if seqOf(req)%2 == 1 {
					return nil
				}
				return [][]byte{req}
			},
			check: func(t *testing.T, res loadResult, received int) {
				if res.ops == 0 || res.lost < res.ops || res.lost > res.ops+2 || res.errors != 0 || res.ops+res.lost != received {
					t.Errorf("%d replies, %d lost, %d errors (%v); server read %d", res.ops, res.lost, res.errors, res.err, received)
				}
				if want := 100 * float64(res.lost) / float64(received); res.lossPercent() != want {
					t.Errorf("loss %v%%, want %v%%", res.lossPercent(), want)
				}
			},
		},
		{
			name: "an altered echo is a mismatch",
			d:    200 * time.Millisecond,
			reply: func(req []byte) [][]byte {
				bad := bytes.Clone(req)
				bad[len(bad)-1]++
				return [][]byte{bad}
			},
			check: func(t *testing.T, res loadResult, _ int) {
				if res.ops != 0 || res.errors == 0 || !errors.Is(res.err, errEchoMismatch) {
					t.Errorf("%d replies, %d errors, err %v; want only errEchoMismatch", res.ops, res.errors, res.err)
				}
			},
		},
		{
			name: "an oversized echo is a mismatch",
			d:    200 * time.Millisecond,
			reply: func(req []byte) [][]byte {
				return [][]byte{append(bytes.Clone(req), 'x')}
			},
			check: func(t *testing.T, res loadResult, _ int) {
				if res.ops != 0 || res.errors == 0 || !errors.Is(res.err, errEchoMismatch) {
					t.Errorf("%d replies, %d errors, err %v; want only errEchoMismatch", res.ops, res.errors, res.err)
				}
			},
		},
	}
	loads := []struct {
		name string
		run  func(ctx context.Context, addr string, workers int, d time.Duration) (loadResult, error)
	}{
		{"request/response", udpRequestResponse},
		{"queries", udpQueries},
	}
	for _, tt := range tests {
		for _, load := range loads {
			t.Run(tt.name+"/"+load.name, func(t *testing.T) {
				addr, stop := startUDPServer(t, tt.reply)
				res, err := load.run(context.Background(), addr, 2, tt.d)
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, res, stop())
			})
		}
	}
}

func TestUDPLoadAgainstClosedPort(t *testing.T) {
	addr := testutil.RefusedAddr(t, "udp").String()
	ctx := context.Background()

	rr, err := udpRequestResponse(ctx, addr, 2, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// A refused socket is unusable: each worker stops at its first error.
	if rr.ops != 0 || rr.errors != 2 || !errors.Is(rr.err, syscall.ECONNREFUSED) {
		t.Errorf("request/response to a closed port: %d replies, %d errors, err %v", rr.ops, rr.errors, rr.err)
	}
	q, err := udpQueries(ctx, addr, 2, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if q.ops != 0 || q.errors == 0 || !errors.Is(q.err, syscall.ECONNREFUSED) {
		t.Errorf("queries to a closed port: %d replies, %d errors, err %v", q.ops, q.errors, q.err)
	}
	if err := udpProbe(addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("udpProbe error = %v, want ECONNREFUSED", err)
	}
}

func TestUDPProbe(t *testing.T) {
	addr, stop := startUDPEcho(t)
	if err := udpProbe(addr); err != nil {
		t.Fatalf("udpProbe: %v", err)
	}
	if echoed := stop(); echoed != 1 {
		t.Fatalf("probe sent %d datagrams to a working echo, want 1", echoed)
	}
}

func TestLossPercent(t *testing.T) {
	tests := []struct {
		ops, lost int
		want      float64
	}{
		{0, 0, 0},
		{3, 1, 25},
		{0, 5, 100},
		{7, 0, 0},
	}
	for _, tt := range tests {
		if got := (loadResult{ops: tt.ops, lost: tt.lost}).lossPercent(); got != tt.want {
			t.Errorf("lossPercent(ops %d, lost %d) = %v, want %v", tt.ops, tt.lost, got, tt.want)
		}
	}
}
