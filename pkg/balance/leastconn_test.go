package balance

import (
	"testing"

	"github.com/splicerlb/splicer/pkg/backend"
)

// open places one connection the way the data plane does and returns the
// backend's index, failing the test when nothing takes it.
func open(t *testing.T, strat Strategy, s *backend.Set, bs []*backend.Backend) int {
	t.Helper()
	b := strat.Pick(s.Load(), 0)
	if b == nil || !b.TryAcquire() {
		t.Fatalf("no backend took the connection (picked %v)", b)
	}
	return indexOf(bs, b)
}

func actives(bs []*backend.Backend) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.Active()
	}
	return out
}

func TestLeastConnAvoidsPinnedBackend(t *testing.T) {
	strat := mustStrategy(t, LeastConn, Options{})
	bs := newBackends(t, equalWeights(3)...)
	s := mustSet(t, bs, strat, 0)
	for range 50 { // long-lived connections pinned on b0
		if !bs[0].TryAcquire() {
			t.Fatal("TryAcquire failed")
		}
	}
	for i := range 100 {
		if got := open(t, strat, s, bs); got == 0 {
			t.Fatalf("open #%d went to the loaded b0 (actives %v)", i, actives(bs))
		}
	}
	if got := actives(bs); got[0] != 50 || got[1] != 50 || got[2] != 50 {
		t.Fatalf("actives %v, want 50 50 50", got)
	}
}

func TestLeastConnBalances(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		opens   int
		want    []int64
	}{
		{"equal weights", equalWeights(4), 1000, []int64{250, 250, 250, 250}},
		{"weights 1:3", []int{1, 3}, 400, []int64{100, 300}},
		{"weights 1:2:5", []int{1, 2, 5}, 800, []int64{100, 200, 500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			strat := mustStrategy(t, LeastConn, Options{})
			bs := newBackends(t, tc.weights...)
			s := mustSet(t, bs, strat, 0)
			equal := tc.weights[0] == tc.weights[len(tc.weights)-1]
			for i := range tc.opens {
				open(t, strat, s, bs)
				if a := actives(bs); equal && spread(a) > 1 {
					t.Fatalf("after %d opens: actives %v, max-min above 1", i+1, a)
				}
			}
			got := actives(bs)
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("actives %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestLeastConnBreaksTiesRandomly picks among idle equal backends without
// opening anything: every one of them must come up.
func TestLeastConnBreaksTiesRandomly(t *testing.T) {
	strat := mustStrategy(t, LeastConn, Options{})
	bs := newBackends(t, equalWeights(4)...)
	s := mustSet(t, bs, strat, 0)
	seen := make([]int, len(bs))
	for range 1000 {
		seen[indexOf(bs, strat.Pick(s.Load(), 0))]++
	}
	for i, n := range seen {
		if n == 0 {
			t.Fatalf("b%d never picked in 1000 ties (counts %v)", i, seen)
		}
	}
}

func spread(a []int64) int64 {
	lo, hi := a[0], a[0]
	for _, v := range a {
		lo, hi = min(lo, v), max(hi, v)
	}
	return hi - lo
}
