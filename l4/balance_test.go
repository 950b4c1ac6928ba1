package l4

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// TestLeastConnSpreadsHeldConnections opens connections one after another
// and keeps them: with equal weights leastconn keeps the backends within
// one connection of each other, whichever loop accepted each client.
func TestLeastConnSpreadsHeldConnections(t *testing.T) {
	bs := []*testBackend{startBackend(t, echo), startBackend(t, echo), startBackend(t, echo)}
	addrs := []netip.AddrPort{bs[0].addr, bs[1].addr, bs[2].addr}
	s := startServer(t, testConfig(t, addrs, func(fb *config.FrontendBuilder) { fb.Strategy("leastconn") }))
	fe := s.frontends[0]
	for i := 1; i <= 30; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		lo, hi := int64(1<<62), int64(0)
		for _, b := range fe.set.Backends() {
			lo, hi = min(lo, b.Active()), max(hi, b.Active())
		}
		if hi-lo > 1 {
			t.Fatalf("after %d opens: active spread %d..%d", i, lo, hi)
		}
	}
	for i, b := range fe.set.Backends() {
		if got := b.Active(); got != 10 {
			t.Errorf("backend %d holds %d connections, want 10", i, got)
		}
	}
}

// TestMaglevKeepsClientOnBackend checks that every connection from one
// client address lands on the same backend.
func TestMaglevKeepsClientOnBackend(t *testing.T) {
	bs := []*testBackend{startBackend(t, echo), startBackend(t, echo), startBackend(t, echo)}
	addrs := []netip.AddrPort{bs[0].addr, bs[1].addr, bs[2].addr}
	s := startServer(t, testConfig(t, addrs, func(fb *config.FrontendBuilder) { fb.Strategy("maglev") }))
	for i := 0; i < 20; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		exchange(c, []byte("x"))
		c.Close()
	}
	used := 0
	for _, b := range bs {
		if b.accepted.Load() > 0 {
			used++
		}
	}
	if used != 1 {
		t.Errorf("one client address reached %d backends, want 1", used)
	}
}
