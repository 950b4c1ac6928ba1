package balance

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestSmoothScheduleExamples(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    []uint32
	}{
		{"5:1:1 interleaves", []uint32{5, 1, 1}, []uint32{0, 0, 1, 0, 2, 0, 0}},
		{"1:2:3", []uint32{1, 2, 3}, []uint32{2, 1, 0, 2, 1, 2}},
		{"gcd reduces the cycle", []uint32{170, 85, 85}, []uint32{0, 1, 2, 0}},
		{"equal weights rotate", []uint32{256, 256, 256}, []uint32{0, 1, 2}},
		{"single", []uint32{7}, []uint32{0}},
		{"empty", nil, nil},
	}
	for _, tc := range tests {
		if got := smoothSchedule(tc.weights); !slices.Equal(got, tc.want) {
			t.Errorf("%s: smoothSchedule(%v) = %v, want %v", tc.name, tc.weights, got, tc.want)
		}
	}
}

// TestSmoothScheduleMatchesNginx compares the fast expansion with the
// textbook loop, pick by pick, on weight sets with few and with many
// distinct weights.
func TestSmoothScheduleMatchesNginx(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		n := 1 + rng.IntN(40)
		distinct := 1 + rng.IntN(6) // draw from a few values: groups form
		if round%2 == 0 {
			distinct = 256
		}
		values := make([]uint32, distinct)
		for i := range values {
			values[i] = 1 + rng.Uint32N(256)
		}
		weights := make([]uint32, n)
		for i := range weights {
			weights[i] = values[rng.IntN(distinct)]
		}
		got := smoothSchedule(weights)
		ref := newNginxWRR(weights)
		want := make([]uint32, len(got))
		for i := range want {
			want[i] = uint32(ref.pick())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("weights %v: schedule differs from nginx", weights)
		}
		// A full cycle: counts match the reduced weights exactly.
		g := weights[0]
		for _, w := range weights {
			g = gcd(g, w)
		}
		counts := make([]uint32, n)
		for _, i := range got {
			counts[i]++
		}
		for i, w := range weights {
			if counts[i] != w/g {
				t.Fatalf("weights %v: backend %d picked %d times per cycle, want %d", weights, i, counts[i], w/g)
			}
		}
	}
}

func TestRoundRobinExactCounts(t *testing.T) {
	strat := mustStrategy(t, RoundRobin, Options{})
	bs := newBackends(t, 1, 2, 3)
	s := mustSet(t, bs, strat, 0)
	counts := make([]int, len(bs))
	var seq []int
	for range 6000 {
		i := indexOf(bs, strat.Pick(s.Load(), 0))
		counts[i]++
		if len(seq) < 12 {
			seq = append(seq, i)
		}
	}
	if !slices.Equal(counts, []int{1000, 2000, 3000}) {
		t.Fatalf("6000 picks over 1:2:3 gave %v", counts)
	}
	// Smooth: the nginx cycle c b a c b c, repeated; never a run of three.
	if want := []int{2, 1, 0, 2, 1, 2, 2, 1, 0, 2, 1, 2}; !slices.Equal(seq, want) {
		t.Fatalf("first picks %v, want %v", seq, want)
	}
}

// TestRoundRobinConcurrent picks from 8 goroutines at once: with weights
// 1:3:4 (an 8-pick cycle) and 800000 picks in all, the totals are exactly
// 100000 cycles' worth, whatever the interleaving.
func TestRoundRobinConcurrent(t *testing.T) {
	const goroutines, picks = 8, 100000
	strat := mustStrategy(t, RoundRobin, Options{})
	bs := newBackends(t, 1, 3, 4)
	s := mustSet(t, bs, strat, 0)
	counts := make([][3]int, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range picks {
				counts[g][indexOf(bs, strat.Pick(s.Load(), 0))]++
			}
		}()
	}
	wg.Wait()
	var total [3]int
	for _, c := range counts {
		for i := range c {
			total[i] += c[i]
		}
	}
	if want := [3]int{100000, 300000, 400000}; total != want {
		t.Fatalf("totals %v, want %v", total, want)
	}
}

// TestRoundRobinRebuildKeepsRotating checks that a rebuild continues the
// rotation rather than restarting the schedule, which would favour its head
// under frequent rebuilds.
func TestRoundRobinRebuildKeepsRotating(t *testing.T) {
	strat := mustStrategy(t, RoundRobin, Options{})
	bs := newBackends(t, 1, 1, 1)
	s := mustSet(t, bs, strat, 0)
	var got []int
	for range 4 {
		got = append(got, indexOf(bs, strat.Pick(s.Load(), 0)))
		if err := bs[0].SetWeight(2); err != nil { // rebuild, then back
			t.Fatal(err)
		}
		if err := bs[0].SetWeight(1); err != nil {
			t.Fatal(err)
		}
	}
	if want := []int{0, 1, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("picks across rebuilds %v, want %v", got, want)
	}
}
