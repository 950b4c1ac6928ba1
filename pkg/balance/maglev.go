package balance

import (
	"slices"
	"strings"

	"github.com/splicerlb/splicer/pkg/backend"
)

// maglev is Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup
// table of a prime number of slots, each owned by a backend, indexed by the
// client key. The table depends only on the config (backend names, weights,
// table size) and on which backends are available, through fixed hash
// functions, so independent instances with the same config and the same
// view of their backends build the same table and send a client to the same
// backend. The order the backends were configured, discovered or added in
// does not count: members take their turns in the order of their names
// (unique in a Set), so a DNS answer in another order, or a history of
// reloads that built the same list differently, builds the same table.
//
// The table is built in two phases so that availability changes move as few
// keys as possible:
//
//  1. A base table over every backend of the snapshot's tier, available or
//     not, with full weights: it depends on the config alone.
//  2. Each available backend keeps the first claims of its base slots in
//     proportion to its effective weight (all of them unless slow start is
//     ramping it); every other slot (those of unavailable backends, and the
//     share a ramping backend cannot take yet) is refilled by the available
//     backends taking maglev turns again.
//
// So a backend going down moves only its own keys, spread evenly over the
// others, and coming back takes exactly those keys back; the plain Maglev
// algorithm, rebuilt without the backend, would also move some other keys
// (0.2% of the table at 10 backends, 0.6% at 1000, table size 65537).
// Configuration changes (adding, removing or reweighting a backend) change
// the base table and move keys as plain Maglev does.
type maglev struct {
	size uint64 // prime
}

// maglevTable maps a slot to the index of its owner in the snapshot.
type maglevTable struct {
	slots []int32
}

func (*maglev) Name() string { return Maglev }

// Pick returns the owner of the key's slot.
func (*maglev) Pick(s *backend.Snapshot, key uint64) *backend.Backend {
	t, _ := s.Prepared().(*maglevTable)
	if t == nil {
		return nil
	}
	return s.Backend(int(t.slots[key%uint64(len(t.slots))]))
}

// Prepare builds the lookup table of s, or nil when s is empty.
func (m *maglev) Prepare(s *backend.Snapshot) any {
	if s.Len() == 0 {
		return nil
	}
	// Build over the tier sorted by name: the turn order decides who takes
	// a contested slot, so it must not depend on the tier's order.
	tier := slices.SortedFunc(slices.Values(s.Tier()), func(a, b backend.Member) int {
		return strings.Compare(a.Backend.Name(), b.Backend.Name())
	})
	perms := make([]permutation, len(tier))
	full := make([]uint64, len(tier))
	eff := make([]uint64, len(tier))
	for j, mb := range tier {
		perms[j] = newPermutation(mb.Backend.Name(), m.size)
		full[j], eff[j] = uint64(mb.Weight), uint64(mb.Effective)
	}

	owner := make([]int32, m.size) // tier index per slot; -1: free
	rank := make([]int32, m.size)  // owner's claim number for the slot
	claims := make([]int32, len(tier))
	for i := range owner {
		owner[i] = -1
	}
	fill(owner, rank, claims, perms, full, len(owner))

	keep := make([]int32, len(tier))
	for j := range tier {
		keep[j] = int32((uint64(claims[j])*eff[j] + full[j] - 1) / full[j])
	}
	free := 0
	for i, j := range owner {
		if rank[i] >= keep[j] {
			owner[i] = -1
			free++
		}
	}
	if free > 0 {
		// The refill's ranks are not needed: rank and claims serve as scratch.
		fill(owner, rank, claims, perms, eff, free)
	}

	// Renumber owners from sorted tier indexes to snapshot indexes.
	at := make(map[*backend.Backend]int32, s.Len())
	for i := range s.Len() {
		at[s.Backend(i)] = int32(i)
	}
	index := make([]int32, len(tier))
	for j, mb := range tier {
		index[j] = at[mb.Backend] // every member with eff > 0 is in s
	}
	for i, j := range owner {
		owner[i] = index[j]
	}
	return &maglevTable{slots: owner}
}

// permutation is a backend's preference order over the slots, slot
// (offset + n*skip) mod size for n = 0, 1, ...; skip is in 1..size-1 and size
// is prime, so it visits every slot once.
type permutation struct {
	offset, skip uint64
}

// skipSeed separates the skip hash from the offset hash (the golden ratio's
// fraction bits, a conventional nothing-up-my-sleeve constant).
const skipSeed = 0x9e3779b97f4a7c15

func newPermutation(name string, size uint64) permutation {
	h := fnv1a64(name)
	return permutation{offset: mix64(h) % size, skip: mix64(h^skipSeed)%(size-1) + 1}
}

// fill hands the free slots of owner (-1) to the members with a positive
// weight. Members take turns in passes, as in the Maglev paper, each claiming
// the next free slot of its permutation; weights decide how many turns a
// member gets: each pass adds weight*members to its credit and every turn
// costs the total weight, so turns are proportional to weight and equal
// weights give exactly one turn per pass (the paper's algorithm). Every
// claim records its rank, the member's claim count so far, in rank and
// claims.
//
// It terminates: after each pass's credit the credits average at least the
// total, so some member takes a turn, and a turn always finds a free slot
// because permutations visit every slot.
func fill(owner, rank, claims []int32, perms []permutation, weights []uint64, free int) {
	var total, members uint64
	for _, w := range weights {
		if w > 0 {
			total += w
			members++
		}
	}
	size := uint64(len(owner))
	next := make([]uint64, len(perms)) // slot each member tries next
	credit := make([]uint64, len(perms))
	for j, p := range perms {
		next[j] = p.offset
	}
	for free > 0 {
		for j, w := range weights {
			if w == 0 {
				continue
			}
			credit[j] += w * members
			for ; credit[j] >= total && free > 0; credit[j] -= total {
				slot, skip := next[j], perms[j].skip
				for owner[slot] >= 0 {
					if slot += skip; slot >= size {
						slot -= size
					}
				}
				owner[slot], rank[slot] = int32(j), claims[j]
				claims[j]++
				next[j] = slot
				free--
			}
		}
	}
}
