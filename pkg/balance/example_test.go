package balance_test

import (
	"fmt"
	"log"
	"net/netip"
	"sort"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/balance"
)

// weightedHash is a strategy written against the package's contract: it
// sends a client key to a backend in proportion to the weights, always the
// same backend for the same key while the snapshot is unchanged. What it
// needs beyond the snapshot (the running sum of the weights) it computes in
// Prepare, once per snapshot, so Pick only reads.
type weightedHash struct{}

func (weightedHash) Name() string { return "weighted-hash" }

// Prepare runs when the Set builds a snapshot: after a weight, state or
// health change, never on the hot path.
func (weightedHash) Prepare(s *backend.Snapshot) any {
	cum := make([]uint64, s.Len())
	var sum uint64
	for i := range cum {
		sum += uint64(s.Weight(i))
		cum[i] = sum
	}
	return cum
}

// Pick takes no lock and allocates nothing. A snapshot some other Preparer
// built carries no table of ours: Pick returns nil for it, as for an empty
// one.
func (weightedHash) Pick(s *backend.Snapshot, key uint64) *backend.Backend {
	cum, ok := s.Prepared().([]uint64)
	if !ok || len(cum) == 0 || len(cum) != s.Len() {
		return nil
	}
	x := key % cum[len(cum)-1]
	return s.Backend(sort.Search(len(cum), func(i int) bool { return x < cum[i] }))
}

// The compiler checks the contract.
var _ balance.Strategy = weightedHash{}

// ExampleStrategy writes a strategy and drives it as the data plane does:
// the strategy is the Set's Preparer, each pick reads the current snapshot,
// and an operator's change (here a drain) publishes a new snapshot that the
// next picks follow. The daemon picks strategies by name with New; one
// written like this is for an embedder that builds its own Sets.
func ExampleStrategy() {
	var members []*backend.Backend
	for _, spec := range []backend.Spec{
		{Name: "a", Address: netip.MustParseAddrPort("127.0.0.1:8001"), Weight: 1},
		{Name: "b", Address: netip.MustParseAddrPort("127.0.0.1:8002"), Weight: 3},
	} {
		b, err := backend.New(spec)
		if err != nil {
			log.Fatal(err)
		}
		members = append(members, b)
	}
	strat := weightedHash{}
	set, err := backend.NewSet(members, strat, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()

	// The snapshot scales weights up to MaxWeight, keeping their ratio.
	snap := set.Load()
	fmt.Println("snapshot weights:", snap.Weight(0), snap.Weight(1))

	// 3400 keys cover the 340 of total weight ten times over.
	count := func() map[string]int {
		got := map[string]int{}
		snap := set.Load() // one atomic read: what a loop does per connection
		for key := range uint64(3400) {
			// A real caller passes balance.KeyFromAddr(clientIP) and then
			// b.TryAcquire(), moving on with snap.Next(b) when it fails.
			got[strat.Pick(snap, key).Name()]++
		}
		return got
	}
	fmt.Println("weights 1 and 3:", count())

	if err := members[0].SetState(backend.Drain); err != nil {
		log.Fatal(err)
	}
	fmt.Println("a drained:", count())
	// Output:
	// snapshot weights: 85 255
	// weights 1 and 3: map[a:850 b:2550]
	// a drained: map[b:3400]
}
