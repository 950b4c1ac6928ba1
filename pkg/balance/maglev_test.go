package balance

import (
	"math"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
)

// owners returns, for every slot of the maglev table behind s, the index in
// bs of its owner: key k lands on slot k mod size.
func owners(t *testing.T, strat Strategy, s *backend.Set, bs []*backend.Backend, size int) []int {
	t.Helper()
	snap := s.Load()
	out := make([]int, size)
	for k := range out {
		out[k] = indexOf(bs, strat.Pick(snap, uint64(k)))
	}
	return out
}

func shares(owner []int, n int) []int {
	c := make([]int, n)
	for _, o := range owner {
		c[o]++
	}
	return c
}

// shareSpread returns the relative standard deviation and the largest relative
// deviation of the shares of slots from their weight shares.
func shareSpread(got, weights []int, size int) (rsd, worst float64) {
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, c := range got {
		want := float64(size) * float64(weights[i]) / float64(total)
		d := (float64(c) - want) / want
		rsd += d * d
		worst = max(worst, math.Abs(d))
	}
	return math.Sqrt(rsd / float64(len(got))), worst
}

// TestMaglevShares measures how evenly the table splits: each backend's
// slots are a binomial draw around its weight share (rendezvous hashing
// gives up the turn-taking's exact split for exact minimal disruption),
// so the relative standard deviation is about sqrt((1-p)/(size*p)) for a
// share p: 1.17% at 10 equal backends and 65537 slots, 3.9% at 100. The
// tables are fixed, so the bounds hold with margin, not by luck.
func TestMaglevShares(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		rsd, max float64 // bounds, in %
	}{
		{"10 equal", equalWeights(10), 2, 4},               // measured 1.42%, 2.60%
		{"100 equal", equalWeights(100), 5, 15},            // measured 3.91%, 11.54%
		{"weights 1 to 4", []int{1, 2, 3, 4}, 1.2, 2},      // measured 0.74%, 1.17%
		{"10 weighted 1 to 4", mixedWeights(10), 2.2, 4.5}, // measured 1.72%, 3.07%
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const size = DefaultMaglevTableSize
			strat := mustStrategy(t, Maglev, Options{})
			bs := newBackends(t, tc.weights...)
			got := shares(owners(t, strat, mustSet(t, bs, strat, 0), bs, size), len(bs))
			rsd, worst := shareSpread(got, tc.weights, size)
			t.Logf("%s: relative standard deviation %.2f%%, worst %.2f%%", tc.name, 100*rsd, 100*worst)
			if 100*rsd > tc.rsd || 100*worst > tc.max {
				t.Fatalf("shares %v: relative standard deviation %.2f%% (want at most %v%%), worst %.2f%% (want at most %v%%)",
					got, 100*rsd, tc.rsd, 100*worst, tc.max)
			}
		})
	}
}

// TestMaglevBackendDown takes one of 10 backends out and brings it back: only
// its keys move, spread over the others, and they all come back.
func TestMaglevBackendDown(t *testing.T) {
	const size, n, gone = DefaultMaglevTableSize, 10, 3
	strat := mustStrategy(t, Maglev, Options{})
	bs := newBackends(t, equalWeights(n)...)
	s := mustSet(t, bs, strat, 0)
	before := owners(t, strat, s, bs, size)

	bs[gone].SetHealthy(false)
	after := owners(t, strat, s, bs, size)
	gained := make([]int, n)
	removed := 0
	for k := range before {
		switch {
		case before[k] == gone:
			removed++
			gained[after[k]]++
		case after[k] != before[k]:
			t.Fatalf("key %d moved from b%d to b%d though b%d stayed up", k, before[k], after[k], before[k])
		}
	}
	if gained[gone] != 0 {
		t.Fatalf("the down backend still owns %d slots", gained[gone])
	}
	for i, g := range gained {
		// Each freed slot goes to its runner-up, a ninth of the time each
		// survivor: 728 +- 26 (one standard deviation); measured 689 to 763.
		if i != gone && (g < removed/(n-1)*9/10 || g > removed/(n-1)*11/10) {
			t.Fatalf("gains %v of %d freed slots: b%d got %d, want a ninth within 10%%", gained, removed, i, g)
		}
	}

	bs[gone].SetHealthy(true) // slow start is off: the original table returns
	back := owners(t, strat, s, bs, size)
	for k := range before {
		if back[k] != before[k] {
			t.Fatalf("after recovery key %d is on b%d, was on b%d", k, back[k], before[k])
		}
	}
}

// TestMaglevDeterministic builds two Sets independently from the same
// config, as two splicer instances would, and compares every slot, with all
// backends up and with one down.
func TestMaglevDeterministic(t *testing.T) {
	const size = 10007
	weights := []int{3, 1, 4, 1, 5, 9, 2, 6}
	var tables [2][][]int
	for inst := range tables {
		strat := mustStrategy(t, Maglev, Options{MaglevTableSize: size})
		bs := newBackends(t, weights...)
		s := mustSet(t, bs, strat, 0)
		tables[inst] = append(tables[inst], owners(t, strat, s, bs, size))
		bs[5].SetHealthy(false)
		tables[inst] = append(tables[inst], owners(t, strat, s, bs, size))
	}
	for state := range tables[0] {
		for k := range tables[0][state] {
			if a, b := tables[0][state][k], tables[1][state][k]; a != b {
				t.Fatalf("state %d, slot %d: instance 1 picks b%d, instance 2 b%d", state, k, a, b)
			}
		}
	}
}

// TestMaglevSlowStart recovers a backend with a long slow start: it starts
// with about its ramped share, and only on slots that were its own.
func TestMaglevSlowStart(t *testing.T) {
	const size, n = DefaultMaglevTableSize, 10
	strat := mustStrategy(t, Maglev, Options{})
	bs := newBackends(t, equalWeights(n)...)
	s := mustSet(t, bs, strat, time.Hour)
	base := owners(t, strat, s, bs, size)
	bs[0].SetHealthy(false)
	bs[0].SetHealthy(true)

	snap := s.Load()
	eff, sum := 0, 0
	for i := range snap.Len() {
		sum += int(snap.Weight(i))
		if snap.Backend(i) == bs[0] {
			eff = int(snap.Weight(i))
		}
	}
	if eff >= int(snap.Weight(1)) {
		t.Fatalf("recovered backend at weight %d, want it ramping below %d", eff, snap.Weight(1))
	}
	ramped := owners(t, strat, s, bs, size)
	owned := 0
	for k, o := range ramped {
		if o != 0 {
			continue
		}
		owned++
		if base[k] != 0 {
			t.Fatalf("ramping b0 owns slot %d, which was b%d's", k, base[k])
		}
	}
	if want := size * eff / sum; owned < want-size/100 || owned > want+size/100 {
		t.Fatalf("ramping b0 owns %d slots, want %d (weight %d of %d) within 1%% of the table", owned, want, eff, sum)
	}
}

// TestMaglevGoldenTable pins a small table: instances of different versions
// must build the same table from the same config, so any change to the
// hashes or the scores that alters it is a breaking one. (The switch from
// the paper's turn-taking to rendezvous filling was one: instances of the
// two versions disagree on most clients during a rolling upgrade.)
func TestMaglevGoldenTable(t *testing.T) {
	const size = 31
	strat := mustStrategy(t, Maglev, Options{MaglevTableSize: size})
	bs := newBackends(t, 1, 2, 1)
	got := owners(t, strat, mustSet(t, bs, strat, 0), bs, size)
	want := []int{1, 1, 0, 1, 2, 0, 2, 0, 2, 2, 2, 0, 2, 1, 1, 2, 1, 1, 2, 2, 2, 1, 2, 1, 0, 1, 1, 1, 1, 1, 2}
	for k := range want {
		if got[k] != want[k] {
			t.Fatalf("table %v, want %v", got, want)
		}
	}
}

// TestMaglevOrderIndependent builds Sets of the same backends in different
// orders, as instances fed by DNS answers in different orders, or by
// different histories of reloads, would: every key picks the backend of the
// same name, with all backends up and with one down.
func TestMaglevOrderIndependent(t *testing.T) {
	const size, n = 10007, 10
	weights := []int{3, 1, 4, 1, 5, 9, 2, 6, 5, 3}
	orders := [][]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
		{3, 7, 0, 9, 1, 5, 8, 2, 6, 4},
	}
	var names [][][]string // per order, per state, per slot
	for _, order := range orders {
		all := newBackends(t, weights...)
		bs := make([]*backend.Backend, n)
		for i, j := range order {
			bs[i] = all[j]
		}
		strat := mustStrategy(t, Maglev, Options{MaglevTableSize: size})
		s := mustSet(t, bs, strat, 0)
		var states [][]string
		for _, down := range []int{-1, 4} {
			if down >= 0 {
				all[down].SetHealthy(false)
			}
			snap := s.Load()
			slots := make([]string, size)
			for k := range slots {
				slots[k] = strat.Pick(snap, uint64(k)).Name()
			}
			states = append(states, slots)
		}
		names = append(names, states)
	}
	for o := 1; o < len(orders); o++ {
		for state := range names[0] {
			for k := range names[0][state] {
				if a, b := names[0][state][k], names[o][state][k]; a != b {
					t.Fatalf("order %v, state %d, slot %d: %s, but %s in configuration order", orders[o], state, k, b, a)
				}
			}
		}
	}
}
