package balance

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/splicerlb/splicer/pkg/backend"
)

// electOracle returns the owner of every slot of a table of size over the
// backends of snap, electing each slot by comparing every backend's score
// with the best so far: no groups, no incremental update, and products in
// 128 bits. It defines what the table must be.
func electOracle(snap *backend.Snapshot, size int) []string {
	t := log2Table()
	r := &rendezvous{log2: t}
	out := make([]string, size)
	for i := range out {
		sh := slotHash(i)
		best, bh, bs, bw := "", uint64(0), uint64(0), uint64(0)
		for k := range snap.Len() {
			name, w := snap.Backend(k).Name(), uint64(snap.Weight(k))
			h := pairHash(sh, nameID(name))
			s := r.score(h)
			xhi, xlo := bits.Mul64(s, bw)
			yhi, ylo := bits.Mul64(bs, w)
			wins := best == "" || xhi < yhi || xhi == yhi && xlo < ylo ||
				xhi == yhi && xlo == ylo && (h > bh || h == bh && name < best)
			if wins {
				best, bh, bs, bw = name, h, s, w
			}
		}
		out[i] = best
	}
	return out
}

// tableNames returns the owner's name of every slot of the maglev table
// behind s.
func tableNames(strat Strategy, s *backend.Set, size int) []string {
	snap := s.Load()
	out := make([]string, size)
	for k := range out {
		out[k] = strat.Pick(snap, uint64(k)).Name()
	}
	return out
}

// TestMaglevIncrementalEqualsFull drives one strategy through random
// histories (health flaps, weight changes, several changes at once, a move
// to the backup tier and back, a second Set taking over part of the
// backends as a reload would) and checks after every change that its
// table, updated incrementally from the previous one, is exactly the
// table elected from scratch for the backends it now has.
func TestMaglevIncrementalEqualsFull(t *testing.T) {
	const size, n, steps = 1009, 24, 400
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 19))
			weights := make([]int, n)
			for i := range weights {
				weights[i] = 1 + rng.IntN(4)
			}
			bs := newBackends(t, weights...)
			strat := mustStrategy(t, Maglev, Options{MaglevTableSize: size})
			lo, hi := 0, 16 // the Set's members are bs[lo:hi]
			s := mustSet(t, bs[lo:hi], strat, 0)
			hrw := strat.(*maglev).hrw
			for step := range steps {
				var did string
				switch op := rng.IntN(20); {
				case op < 10:
					b := bs[lo+rng.IntN(hi-lo)]
					b.SetHealthy(!b.Healthy())
					did = fmt.Sprintf("%s healthy %v", b.Name(), b.Healthy())
				case op < 14:
					b := bs[lo+rng.IntN(hi-lo)]
					w := 1 + rng.IntN(4)
					if err := b.SetWeight(w); err != nil {
						t.Fatal(err)
					}
					did = fmt.Sprintf("%s weight %d", b.Name(), w)
				case op < 17:
					k := 2 + rng.IntN(5)
					for range k {
						b := bs[lo+rng.IntN(hi-lo)]
						b.SetHealthy(!b.Healthy())
					}
					did = fmt.Sprintf("%d health flips", k)
				case op < 18:
					b := bs[lo+rng.IntN(hi-lo)]
					b.SetBackup(!b.Backup())
					did = fmt.Sprintf("%s backup %v", b.Name(), b.Backup())
				default:
					// A new Set of an overlapping window of the backends,
					// with the same strategy.
					lo = rng.IntN(n - 8)
					hi = lo + 8 + rng.IntN(n-lo-8+1)
					s.Close()
					s = mustSet(t, bs[lo:hi], strat, 0)
					did = fmt.Sprintf("new Set of b%d..b%d", lo, hi-1)
				}
				if s.Load().Len() == 0 {
					continue
				}
				got, want := tableNames(strat, s, size), electOracle(s.Load(), size)
				for k := range want {
					if got[k] != want[k] {
						t.Fatalf("step %d (%s): slot %d is %s's, want %s's", step, did, k, got[k], want[k])
					}
				}
			}
			t.Logf("%d updates, %d of them full", hrw.round, hrw.fulls)
			if hrw.fulls*3 > int(hrw.round) {
				t.Errorf("%d of %d updates were full: the incremental path is barely tested", hrw.fulls, hrw.round)
			}
		})
	}
}

// TestMaglevMinimalDisruption changes one backend of 10 at a time and
// checks which slots move: a backend leaving moves exactly its own slots,
// one arriving takes slots and moves no other, a weight raised moves slots
// only to its backend and a weight lowered only away from it.
func TestMaglevMinimalDisruption(t *testing.T) {
	const size = DefaultMaglevTableSize
	for _, weights := range [][]int{equalWeights(10), mixedWeights(10)} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			strat := mustStrategy(t, Maglev, Options{})
			bs := newBackends(t, weights...)
			s := mustSet(t, bs, strat, 0)
			const b4 = "b4"
			check := func(change string, do func(), onlyTo, onlyFrom bool) {
				t.Helper()
				before := tableNames(strat, s, size)
				do()
				after := tableNames(strat, s, size)
				moved, others := 0, 0
				for k := range before {
					switch {
					case before[k] == after[k]:
					case onlyTo && after[k] == b4, onlyFrom && before[k] == b4:
						moved++
					default:
						others++
					}
				}
				t.Logf("%s: %d slots moved (%.2f%%), %d others", change, moved, 100*float64(moved)/size, others)
				if others != 0 || moved == 0 {
					t.Fatalf("%s moved %d slots as expected and %d others, want some and 0", change, moved, others)
				}
			}
			check("b4 down", func() { bs[4].SetHealthy(false) }, false, true)
			check("b4 up", func() { bs[4].SetHealthy(true) }, true, false)
			check("b4 weight raised", func() { must(t, bs[4].SetWeight(2*weights[4])) }, true, false)
			check("b4 weight lowered", func() { must(t, bs[4].SetWeight(weights[4])) }, false, true)
			check("b4 drained", func() { must(t, bs[4].SetState(backend.Drain)) }, false, true)
			check("b4 ready", func() { must(t, bs[4].SetState(backend.Ready)) }, true, false)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestMaglevScore checks the fixed-point logarithms against math.Log2: the
// table to within 2^-46, the score to within 2e-7 (its interpolation), and
// the score never increases with the hash.
func TestMaglevScore(t *testing.T) {
	tab := log2Table()
	for k, v := range tab {
		want := math.Log2(1+float64(k)/log2Steps) * (1 << scoreBits)
		if d := math.Abs(float64(v) - want); d > 4 {
			t.Fatalf("log2Table[%d] = %d, want %.1f", k, v, want)
		}
	}
	r := &rendezvous{log2: tab}
	rng := rand.New(rand.NewPCG(5, 6))
	prev, prevS := uint64(0), r.score(0)
	for range 200000 {
		// Hashes spread over every magnitude, in increasing order.
		h := prev + rng.Uint64N(1<<(rng.IntN(58)))
		if h < prev {
			break
		}
		s := r.score(h)
		if s > prevS {
			t.Fatalf("score(%#x) = %d > score(%#x) = %d", h, s, prev, prevS)
		}
		want := -math.Log2(float64(h|1) / (1 << 64))
		if got := float64(s) / (1 << scoreBits); math.Abs(got-want) > 2e-7 {
			t.Fatalf("score(%#x) = %.12f, want %.12f", h, got, want)
		}
		prev, prevS = h, s
	}
	if s := r.score(math.MaxUint64); s == 0 || s > 1<<scoreBits/1000000 {
		t.Fatalf("score(2^64-1) = %d, want a tiny positive number", s)
	}
	if s := r.score(0); s != 64<<scoreBits {
		t.Fatalf("score(0) = %d, want 64<<%d", s, scoreBits)
	}
}
