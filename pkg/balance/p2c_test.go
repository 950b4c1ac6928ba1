package balance

import "testing"

func TestP2C(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		active  []int
		never   int // index p2c must never pick; -1 for none
		always  int // index p2c must always pick; -1 for none
	}{
		{"single backend", []int{1}, []int{9}, -1, 0},
		{"less loaded of two", []int{1, 1}, []int{10, 0}, 0, 1},
		{"most loaded never wins", []int{1, 1, 1}, []int{0, 5, 10}, 2, -1},
		{"weights count", []int{1, 3}, []int{1, 2}, 0, 1}, // 2/1 vs 3/3
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			strat := mustStrategy(t, P2C, Options{})
			bs := newBackends(t, tc.weights...)
			s := mustSet(t, bs, strat, 0)
			for i, n := range tc.active {
				for range n {
					if !bs[i].TryAcquire() {
						t.Fatal("TryAcquire failed")
					}
				}
			}
			seen := make([]int, len(bs))
			for range 2000 {
				seen[indexOf(bs, strat.Pick(s.Load(), 0))]++
			}
			if tc.never >= 0 && seen[tc.never] != 0 {
				t.Fatalf("picks %v: b%d picked", seen, tc.never)
			}
			if tc.always >= 0 && seen[tc.always] != 2000 {
				t.Fatalf("picks %v: b%d not always picked", seen, tc.always)
			}
		})
	}
}

// TestP2CBalances opens connections one by one over equal backends: two
// choices keep the spread small (the bound is loose; its point is that the
// loads do not drift apart).
func TestP2CBalances(t *testing.T) {
	strat := mustStrategy(t, P2C, Options{})
	bs := newBackends(t, equalWeights(8)...)
	s := mustSet(t, bs, strat, 0)
	for range 8000 {
		open(t, strat, s, bs)
	}
	if a := actives(bs); spread(a) > 8 {
		t.Fatalf("actives %v after 8000 opens: spread above 8", a)
	}
}
