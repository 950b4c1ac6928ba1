package balance

import (
	"math/rand/v2"

	"github.com/splicerlb/splicer/pkg/backend"
)

// p2c is the power of two random choices: it draws two distinct backends and
// keeps the one with the lower (active+1)/weight (see leastConn for the +1).
// Two reads per pick whatever the number of backends, and, unlike a strict
// least-connections scan, event loops picking at the same instant rarely
// herd onto the same backend.
type p2c struct{}

func (p2c) Name() string { return P2C }

// Prepare has nothing to precompute: loads change between picks.
func (p2c) Prepare(*backend.Snapshot) any { return nil }

// Pick returns the less loaded of two random backends.
func (p2c) Pick(s *backend.Snapshot, _ uint64) *backend.Backend {
	n := s.Len()
	switch n {
	case 0:
		return nil
	case 1:
		return s.Backend(0)
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++ // distinct from i, still uniform
	}
	// load(j)/w(j) < load(i)/w(i), cross-multiplied.
	if load(s.Backend(j))*uint64(s.Weight(i)) < load(s.Backend(i))*uint64(s.Weight(j)) {
		i = j
	}
	return s.Backend(i)
}
