package balance

import (
	"math/rand/v2"

	"github.com/splicerlb/splicer/pkg/backend"
)

// leastConn is weighted least connections: it picks the backend with the
// lowest (active+1)/weight, the load it would carry after taking this
// connection. Counting the new connection lets weights decide among idle
// backends too, where active/weight would tie at zero. Active counts are the
// backends' own atomics, shared by every event loop.
//
// The scan starts at a random offset and keeps the first minimum, so ties go
// to a random backend without allocating. It reads every backend of the
// snapshot: O(backends) per pick (p2c reads two).
type leastConn struct{}

func (leastConn) Name() string { return LeastConn }

// Prepare has nothing to precompute: loads change between picks.
func (leastConn) Prepare(*backend.Snapshot) any { return nil }

// Pick returns a backend with the lowest weighted load.
func (leastConn) Pick(s *backend.Snapshot, _ uint64) *backend.Backend {
	n := s.Len()
	if n == 0 {
		return nil
	}
	start := rand.IntN(n)
	best, bestLoad, bestW := start, load(s.Backend(start)), uint64(s.Weight(start))
	for j := 1; j < n; j++ {
		i := start + j
		if i >= n {
			i -= n
		}
		// l/w < bestLoad/bestW, cross-multiplied: no division.
		if l, w := load(s.Backend(i)), uint64(s.Weight(i)); l*bestW < bestLoad*w {
			best, bestLoad, bestW = i, l, w
		}
	}
	return s.Backend(best)
}

// load is a backend's active count plus the connection being placed.
func load(b *backend.Backend) uint64 { return uint64(max(b.Active(), 0)) + 1 }
