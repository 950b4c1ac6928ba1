package backend

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// spec returns a valid Spec for test backend number i.
func spec(i int) Spec {
	return Spec{
		Name:    fmt.Sprintf("b%d", i),
		Address: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 5432),
		Weight:  1,
	}
}

func mustNew(t testing.TB, s Spec) *Backend {
	t.Helper()
	b, err := New(s)
	if err != nil {
		t.Fatalf("New(%+v): %v", s, err)
	}
	return b
}

func mustSet(t testing.TB, bs []*Backend, p Preparer, slowStart time.Duration) *Set {
	t.Helper()
	s, err := NewSet(bs, p, slowStart)
	if err != nil {
		t.Fatalf("NewSet: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// names lists the snapshot's backends, in order.
func names(s *Snapshot) []string {
	out := []string{}
	for i := range s.Len() {
		out = append(out, s.Backend(i).Name())
	}
	return out
}

// fakeClock is a settable time source for slow start tests.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
