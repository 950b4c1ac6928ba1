package balance

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"github.com/splicerlb/splicer/pkg/backend"
)

// benchSizes are the backend counts of BenchmarkPick: the cost-growth
// points make bench plots (cmd/splicer-bench, -gobench).
var benchSizes = []int{10, 100, 1000}

// mixedWeights returns n weights cycling through 1..4, a plausible mix.
func mixedWeights(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1 + i%4
	}
	return w
}

// BenchmarkPick measures one pick per op, from one goroutine and from
// GOMAXPROCS goroutines sharing the strategy and the Set as event loops do.
// "nginx-mutex" is the textbook smooth WRR under a mutex, for comparison
// with roundrobin.
func BenchmarkPick(b *testing.B) {
	for _, name := range append(Names(), "nginx-mutex") {
		for _, n := range benchSizes {
			bs := newBackends(b, mixedWeights(n)...)
			pick := benchPicker(b, name, bs)
			b.Run(fmt.Sprintf("%s/n=%d/serial", name, n), func(b *testing.B) {
				b.ReportAllocs()
				key := uint64(0)
				for b.Loop() {
					key += 0x9e3779b97f4a7c15
					pick(key)
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/parallel", name, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					key := rand.Uint64()
					for pb.Next() {
						key += 0x9e3779b97f4a7c15
						if pick(key) == nil {
							b.Error("nil pick")
							return
						}
					}
				})
			})
		}
	}
}

// benchPicker returns a pick function over bs for a strategy name or the
// mutex reference.
func benchPicker(b *testing.B, name string, bs []*backend.Backend) func(key uint64) *backend.Backend {
	if name == "nginx-mutex" {
		weights := make([]uint32, len(bs))
		for i, x := range bs {
			weights[i] = uint32(x.Weight())
		}
		ref := newNginxWRR(weights)
		return func(uint64) *backend.Backend { return bs[ref.pick()] }
	}
	strat := mustStrategy(b, name, Options{})
	s := mustSet(b, bs, strat, 0)
	return func(key uint64) *backend.Backend { return strat.Pick(s.Load(), key) }
}

// BenchmarkRebuild measures a health flap of one of 1024 backends: each op
// is one SetHealthy that rebuilds the snapshot and the strategy's prepared
// data (alternately without the backend and with it).
func BenchmarkRebuild(b *testing.B) {
	const n = 1024
	random := make([]int, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = 1 + rng.IntN(backend.MaxWeight)
	}
	cases := []struct {
		strategy, weights string
		w                 []int
	}{
		{RoundRobin, "equal", equalWeights(n)},
		{RoundRobin, "mixed", mixedWeights(n)},
		{RoundRobin, "random", random},
		{LeastConn, "mixed", mixedWeights(n)},
		{P2C, "mixed", mixedWeights(n)},
		{Maglev, "equal", equalWeights(n)},
		{Maglev, "mixed", mixedWeights(n)},
		{Maglev, "random", random},
	}
	for _, tc := range cases {
		b.Run(fmt.Sprintf("%s/n=%d/weights=%s", tc.strategy, n, tc.weights), func(b *testing.B) {
			b.ReportAllocs()
			bs := newBackends(b, tc.w...)
			mustSet(b, bs, mustStrategy(b, tc.strategy, Options{}), 0)
			up := false
			for b.Loop() {
				bs[n/2].SetHealthy(up)
				up = !up
			}
		})
	}
}

// BenchmarkMaglevBuild measures the maglev table of 65537 slots built from
// scratch ("full": a new Set, as after a reload that adds or removes
// backends, or a switch of tier), and updated for a health flap of one
// backend ("flap": alternately without it and with it, the incremental
// path), at 10, 100 and 1000 backends of mixed weights.
func BenchmarkMaglevBuild(b *testing.B) {
	for _, n := range benchSizes {
		bs := newBackends(b, mixedWeights(n)...)
		strat := mustStrategy(b, Maglev, Options{})
		s := mustSet(b, bs, strat, 0)
		snap := s.Load()
		b.Run(fmt.Sprintf("full/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fresh := mustStrategy(b, Maglev, Options{})
				if fresh.Prepare(snap) == nil {
					b.Fatal("no table")
				}
			}
		})
		b.Run(fmt.Sprintf("flap/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			up := false
			for b.Loop() {
				bs[n/2].SetHealthy(up)
				up = !up
			}
		})
	}
}

func BenchmarkKeyFromAddr(b *testing.B) {
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	for _, a := range addrs {
		b.Run(a.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				KeyFromAddr(a)
			}
		})
	}
}

// nginxWRR is textbook smooth weighted round-robin as nginx runs it, and as
// most Go balancers copy it: every pick takes a mutex and walks every
// backend. It is the oracle for smoothSchedule and the reference the
// benchmarks compare roundRobin against.
type nginxWRR struct {
	mu      sync.Mutex
	weights []int64
	current []int64
	total   int64
}

func newNginxWRR(weights []uint32) *nginxWRR {
	r := &nginxWRR{weights: make([]int64, len(weights)), current: make([]int64, len(weights))}
	for i, w := range weights {
		r.weights[i] = int64(w)
		r.total += int64(w)
	}
	return r
}

// pick returns the index of the next backend.
func (r *nginxWRR) pick() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	best := -1
	for i, w := range r.weights {
		r.current[i] += w
		if best < 0 || r.current[i] > r.current[best] {
			best = i
		}
	}
	r.current[best] -= r.total
	return best
}
