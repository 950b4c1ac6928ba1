package balance

import (
	"testing"
	"time"
)

// TestSlowStartShares recovers b0 of two weight-1 backends under a long slow
// start: both snapshot weights are then 26 (a tenth of 256, rounded up) and
// 256, and each strategy's share for b0 follows from them exactly.
func TestSlowStartShares(t *testing.T) {
	tests := []struct {
		strategy string
		acquire  bool // open connections rather than only pick
		picks    int
		want     [2]int
	}{
		// Weights 26:256 reduce to 13:128, a 141-pick cycle.
		{RoundRobin, false, 141, [2]int{13, 128}},
		// (active+1)/weight fills both in proportion: 26 and 256 of 282.
		{LeastConn, true, 282, [2]int{26, 256}},
	}
	for _, tc := range tests {
		t.Run(tc.strategy, func(t *testing.T) {
			strat := mustStrategy(t, tc.strategy, Options{})
			bs := newBackends(t, 1, 1)
			s := mustSet(t, bs, strat, time.Hour)
			bs[0].SetHealthy(false)
			bs[0].SetHealthy(true)
			if w0, w1 := s.Load().Weight(0), s.Load().Weight(1); w0 != 26 || w1 != 256 {
				t.Fatalf("snapshot weights %d, %d; want 26, 256", w0, w1)
			}
			var got [2]int
			for range tc.picks {
				b := strat.Pick(s.Load(), 0)
				if tc.acquire && !b.TryAcquire() {
					t.Fatal("TryAcquire failed")
				}
				got[indexOf(bs, b)]++
			}
			if got != tc.want {
				t.Fatalf("%d picks split %v, want %v", tc.picks, got, tc.want)
			}
		})
	}
}
