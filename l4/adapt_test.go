package l4

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/splicerlb/splicer/l4/internal/splice"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestCarrierHysteresis walks one direction through the fills that decide
// its carrier: it splices only after bulkAfter reads in a row fill the
// buffer, and copies again only after copyAfter small splices in a row.
func TestCarrierHysteresis(t *testing.T) {
	const size = 4 << 10
	pool := splice.NewPool(0, 0, size)
	buf := pool.NewCache().GetBuffer()
	type fill struct {
		n        int
		pipe     bool // the fill went through a pipe
		wantBulk bool
	}
	cases := []struct {
		name  string
		fills []fill
	}{
		{"a burst of two buffers and a tail copies", []fill{
			{size, false, false}, {size, false, false}, {100, false, false},
			{size, false, false}, {size, false, false}, {1, false, false},
		}},
		{"three full buffers in a row splice", []fill{
			{size, false, false}, {size, false, false}, {size, false, true},
		}},
		{"one small splice keeps splicing", []fill{
			{size, false, false}, {size, false, false}, {size, false, true},
			{100, true, true}, {bulkBelow, true, true}, {100, true, true},
		}},
		{"two small splices in a row copy, and the count starts over", []fill{
			{size, false, false}, {size, false, false}, {size, false, true},
			{100, true, true}, {100, true, false},
			{size, false, false}, {size, false, false}, {size, false, true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &half{}
			for i, f := range tc.fills {
				h.buf = buf
				if f.pipe {
					h.buf = nil
				}
				h.adapt(f.n, wakeBudget)
				if h.bulk != f.wantBulk {
					t.Fatalf("after fill %d (%d bytes, pipe %v): bulk %v, want %v", i, f.n, f.pipe, h.bulk, f.wantBulk)
				}
			}
		})
	}
}

// TestMidSizedBurstsCopy relays request/response bursts a little over twice
// the buffer size, as a pipelined batch of mid-sized values is: each reads
// as two full buffers and a short tail, which splicer copies without ever
// taking a pipe. A stream still splices.
func TestMidSizedBurstsCopy(t *testing.T) {
	const bufSize = 16 << 10
	const burst = 2*bufSize + 1024 // one write, one segment on loopback
	be := startBackend(t, func(c net.Conn) {
		defer c.Close()
		p := make([]byte, burst)
		for {
			// Answer each burst with one write, so that it arrives
			// whole, as a server's reply to a batch does.
			if _, err := io.ReadFull(c, p); err != nil {
				return
			}
			if _, err := c.Write(p); err != nil {
				return
			}
		}
	})
	stream := startBackend(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(io.Discard, c)
	})
	cfg, err := config.New().Workers(1).MaxPipes(64).BufferSize(bufSize).
		Frontend("fe").Listen("127.0.0.1:0").Backend(be.addr.String(), 1).
		Frontend("stream").Listen("127.0.0.1:0").Backend(stream.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg)
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	want := bytes.Repeat([]byte("0123456789abcdef"), burst/16)
	got := make([]byte, burst)
	for i := 0; i < 50; i++ {
		if _, err := c.Write(want); err != nil {
			t.Fatalf("burst %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("burst %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("burst %d came back different", i)
		}
	}
	if n := s.pipes.PipesOpen(); n != 0 {
		t.Errorf("%d pipes opened for bursts of %d bytes through %d-byte buffers, want none", n, burst, bufSize)
	}

	sc, err := net.DialTimeout("tcp", s.Addrs("stream")[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := sc.Write(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	sc.(*net.TCPConn).CloseWrite()
	testutil.WaitFor(t, 10*time.Second, "the stream to take a pipe", func() bool { return s.pipes.PipesOpen() > 0 })
}
