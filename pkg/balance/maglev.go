package balance

import (
	"math/bits"
	"sync"

	"github.com/splicerlb/splicer/pkg/backend"
)

// maglev is consistent hashing of the client key over a lookup table, as in
// Maglev (Eisenbud et al., NSDI 2016): a prime number of slots, each owned
// by a backend, indexed by the key, so a pick is one table read. The table
// is filled by weighted rendezvous hashing (Thaler and Ravishankar's highest
// random weight, with Schindelhauer and Schomaker's weighted scores) rather
// than by the paper's turn-taking: every (slot, backend) pair has a fixed
// score drawn from a hash of the slot and the backend's name, scaled by the
// backend's weight, and a slot belongs to the available backend with the
// best score. So:
//
//   - The table is a pure function of the available backends' names and
//     effective weights and of the table size: independent instances that
//     see the same backends build the same table, whatever the order the
//     backends were configured, discovered or added in and whatever their
//     history of reloads, health flaps and slow starts.
//   - A backend leaving (down, drained, at its cap, removed from the config
//     or from DNS) moves exactly its own slots, each to the runner-up of
//     that slot, so they spread over the others in proportion to their
//     weights; no other slot changes. A backend arriving takes slots only
//     for itself, and a weight change moves slots only to the backend
//     (raised) or only away from it (lowered). Slow start therefore ramps a
//     recovered backend up through a growing subset of the slots it will
//     own at full weight.
//
// The price is balance: a backend's share of the slots is a binomial draw
// around its weight share (1.4% relative standard deviation measured at 10
// equal backends and 65537 slots, 3.9% at 100), where the paper's turn-taking
// is even to a slot but moves some other keys on every change.
//
// Filling a table from scratch costs slots x backends hashes; Prepare keeps
// the winners of the previous build and, for a few changed backends, only
// compares the newcomers' scores with each slot's winner and re-elects the
// slots of those that left or lost weight (see rendezvous.update). Both
// paths give the same table, bit for bit.
type maglev struct {
	size uint64 // prime

	// mu guards hrw: a reload may build a second Set with this strategy
	// while the first still rebuilds on health changes.
	mu  sync.Mutex
	hrw *rendezvous // the last table built, nil before the first
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
		return nil // the winners of the last build stay for the next diff
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hrw == nil {
		m.hrw = newRendezvous(m.size)
	}
	at := m.hrw.update(s, false)
	slots := make([]int32, m.size)
	for i, j := range m.hrw.owner {
		slots[i] = at[j]
	}
	return &maglevTable{slots: slots}
}

// rendezvous is a table filled by weighted rendezvous hashing, with what it
// needs to follow changes of the backends incrementally.
//
// Backend j scores at slot i
//
//	score(i, j) = -log2(u(i, j)) / weight(j)
//
// with u(i, j) in (0, 1) from a 64-bit hash of the slot and of the
// backend's name, and the lowest score wins the slot: -ln u is
// exponentially distributed, so the winner is backend j with probability
// weight(j) / total weight (the minimum of independent exponential clocks).
// Scores are compared exactly, in integers (see beats), so that every
// instance, on every architecture, elects the same winners: a float log
// may differ in its last bit between platforms.
type rendezvous struct {
	members []member
	byName  map[string]int32 // members index of each name in the table
	free    []int32          // members indexes of departed backends, to reuse

	owner []int32  // per slot, the members index of its winner
	hash  []uint64 // per slot, the winner's hash there (its score's source)

	groups []group // live members by weight, for full elections; nil: stale
	log2   *[log2Steps + 1]uint64
	round  uint64 // updates so far, for member.seen
	fulls  int    // updates that elected every slot (for tests)
}

// member is one backend of the table, or a free entry (weight 0).
type member struct {
	name   string
	id     uint64 // mixed hash of name
	weight uint64 // effective weight; 0 for a free entry
	seen   uint64 // update count when last seen in a snapshot
	at     int32  // index in the snapshot of the last update
	dirty  bool   // its slots need a new election (it left or lost weight)
}

// group is the members of one weight: among them the highest hash has the
// lowest score, so an election compares hashes within a group and computes
// one score per group.
type group struct {
	weight uint64
	ids    []uint64
	index  []int32
}

// slotSeed separates slot hashes from name hashes (the golden ratio's
// fraction bits, a conventional nothing-up-my-sleeve constant).
const slotSeed = 0x9e3779b97f4a7c15

// slotHash is the per-slot half of the pair hash.
func slotHash(slot int) uint64 { return mix64(uint64(slot) + slotSeed) }

// pairHash is the hash of (slot, backend): sh is slotHash(slot), id the
// backend's mixed name hash. mix64 is a bijection in which every input bit
// affects every output bit, so the hashes of two backends at one slot
// behave as independent draws.
func pairHash(sh, id uint64) uint64 { return mix64(sh ^ id) }

// nameID is the hash of a backend's identity: its name, unique in a Set and
// the same on every instance that shares the config or the DNS records.
func nameID(name string) uint64 { return mix64(fnv1a64(name)) }

func newRendezvous(size uint64) *rendezvous {
	return &rendezvous{
		byName: map[string]int32{},
		owner:  make([]int32, size),
		hash:   make([]uint64, size),
		log2:   log2Table(),
	}
}

// update makes the table that of the available backends of s, at their
// effective weights, and returns the snapshot index of each members index
// (for members that left, -1). With full it elects every slot from scratch;
// otherwise it does so only when too much changed to gain by an
// incremental update. Both give the same table.
func (r *rendezvous) update(s *backend.Snapshot, full bool) []int32 {
	r.round++ // from 1: a zero seen is never current
	round := r.round
	full = full || len(r.byName) == 0
	var raised []int32 // new members and those that gained weight
	changed := 0
	for i := range s.Len() {
		b, w := s.Backend(i), uint64(s.Weight(i))
		j, ok := r.byName[b.Name()]
		if !ok {
			j = r.add(b.Name())
		}
		m := &r.members[j]
		m.seen, m.at = round, int32(i)
		switch {
		case w > m.weight:
			raised = append(raised, j)
			changed++
		case w < m.weight:
			m.dirty = true
			changed++
		}
		m.weight = w
	}
	for j := range r.members {
		m := &r.members[j]
		if m.weight > 0 && m.seen != round {
			delete(r.byName, m.name)
			r.free = append(r.free, int32(j))
			*m = member{dirty: true, at: -1}
			changed++
		}
	}
	if changed > 0 {
		r.groups = nil
	}
	// Incremental costs a hash per slot per raised member plus an election
	// per dirty slot; past a quarter of the members changed, electing
	// everything (with its per-group shortcut) is as cheap.
	if !full && 4*changed > s.Len() {
		full = true
	}

	switch {
	case full:
		r.fulls++
		r.electAll()
	case changed > 0:
		r.applyChanges(raised)
	}
	at := make([]int32, len(r.members))
	for j := range r.members {
		r.members[j].dirty = false
		at[j] = r.members[j].at
	}
	return at
}

// add enters a new backend with weight 0 and returns its members index.
// Entries freed by the current update are not free yet (update frees them
// after its adds), so an entry is reused only once its slots have been
// re-elected.
func (r *rendezvous) add(name string) int32 {
	var j int32
	if n := len(r.free); n > 0 {
		j, r.free = r.free[n-1], r.free[:n-1]
	} else {
		j = int32(len(r.members))
		r.members = append(r.members, member{})
	}
	r.members[j] = member{name: name, id: nameID(name)}
	r.byName[name] = j
	return j
}

// electAll elects every slot.
func (r *rendezvous) electAll() {
	r.buildGroups()
	for i := range r.owner {
		r.owner[i], r.hash[i] = r.elect(slotHash(i))
	}
}

// applyChanges re-elects the slots of dirty members (they left or lost
// weight: any member may now beat them) and matches each raised member
// against the winner of every other slot (only it may have overtaken the
// winner, which lost nothing). It gives the slots electAll would: a slot's
// winner changes only if a member that beat it got better, and only raised
// members did.
func (r *rendezvous) applyChanges(raised []int32) {
	type contender struct {
		id, weight uint64
		index      int32
	}
	cs := make([]contender, len(raised))
	for k, j := range raised {
		m := &r.members[j]
		cs[k] = contender{id: m.id, weight: m.weight, index: j}
	}
	for i, j := range r.owner {
		if r.members[j].dirty {
			if r.groups == nil {
				r.buildGroups()
			}
			r.owner[i], r.hash[i] = r.elect(slotHash(i))
			continue
		}
		if len(cs) == 0 {
			continue
		}
		sh, bh := slotHash(i), r.hash[i]
		bs, bw := r.score(bh), r.members[j].weight
		for _, c := range cs {
			if c.index == j {
				continue // the winner itself gained weight: it still wins
			}
			h := pairHash(sh, c.id)
			s := r.score(h)
			if r.beats(c.index, h, s, c.weight, j, bh, bs, bw) {
				j, bh, bs, bw = c.index, h, s, c.weight
			}
		}
		r.owner[i], r.hash[i] = j, bh
	}
}

// buildGroups groups the live members by weight.
func (r *rendezvous) buildGroups() {
	at := map[uint64]int{}
	r.groups = r.groups[:0]
	for j, m := range r.members {
		if m.weight == 0 {
			continue
		}
		g, ok := at[m.weight]
		if !ok {
			g = len(r.groups)
			at[m.weight] = g
			r.groups = append(r.groups, group{weight: m.weight})
		}
		r.groups[g].ids = append(r.groups[g].ids, m.id)
		r.groups[g].index = append(r.groups[g].index, int32(j))
	}
}

// elect returns the winner of the slot of hash sh among the live members,
// and its hash there. Within a group the highest hash wins (the lowest
// score, as the scores share a weight), so only group winners are scored.
func (r *rendezvous) elect(sh uint64) (int32, uint64) {
	best, bh, bs, bw := int32(-1), uint64(0), uint64(0), uint64(0)
	for g := range r.groups {
		gr := &r.groups[g]
		gk, gh := 0, pairHash(sh, gr.ids[0])
		for k, id := range gr.ids[1:] {
			if h := pairHash(sh, id); h > gh || h == gh && r.members[gr.index[k+1]].name < r.members[gr.index[gk]].name {
				gk, gh = k+1, h
			}
		}
		j, s := gr.index[gk], r.score(gh)
		if best < 0 || r.beats(j, gh, s, gr.weight, best, bh, bs, bw) {
			best, bh, bs, bw = j, gh, s, gr.weight
		}
	}
	return best, bh
}

// beats reports whether member a, of hash ha, score numerator sa and weight
// wa at a slot, beats member b there: a lower score sa/wa, compared exactly
// as sa*wb < sb*wa (below 2^54 * MaxWeight, no overflow), then a higher
// hash, then the lower name (only on a full 64-bit hash collision). It is a
// total order, so the winner does not depend on who is compared first.
func (r *rendezvous) beats(a int32, ha, sa, wa uint64, b int32, hb, sb, wb uint64) bool {
	if x, y := sa*wb, sb*wa; x != y {
		return x < y
	}
	if ha != hb {
		return ha > hb
	}
	return r.members[a].name < r.members[b].name
}

// score returns -log2(u) for u = h/2^64 (h forced odd, so u > 0) in fixed
// point with scoreBits fraction bits: from 2^-48 (h near 2^64) to 64 (h =
// 1), below 2^54. It does not decrease when h decreases, so equal weights
// compare by hash alone. The fraction of the logarithm comes from a table
// with linear interpolation between entries, accurate to 2e-7: the
// weighted shares it gives are off by as little, and every platform
// computes it the same way, in integers.
func (r *rendezvous) score(h uint64) uint64 {
	x := h | 1
	e := bits.Len64(x) - 1 // x = 2^e * (m / 2^63)
	m := x << (63 - e)
	i := m >> (63 - log2Bits) & (log2Steps - 1)
	f := m >> (63 - log2Bits - 16) & 0xffff
	t := r.log2
	frac := t[i] + (t[i+1]-t[i])*f>>16
	return uint64(64-e)<<scoreBits - frac
}

const (
	scoreBits = 48 // fraction bits of score and log2Table
	log2Bits  = 10 // log2Table has 2^log2Bits steps
	log2Steps = 1 << log2Bits
)

// log2Table returns log2(1 + k/log2Steps) for k = 0..log2Steps in fixed
// point with scoreBits fraction bits, computed in integers (once).
var log2Table = sync.OnceValue(func() *[log2Steps + 1]uint64 {
	var t [log2Steps + 1]uint64
	for k := range t {
		t[k] = log2Fixed(1<<62 + uint64(k)<<(62-log2Bits))
	}
	return &t
})

// log2Fixed returns log2(y / 2^62) for y in [2^62, 2^63] with scoreBits
// fraction bits, truncated, by repeated squaring: squaring doubles the
// logarithm, and each time the square reaches 2 the next bit is 1.
func log2Fixed(y uint64) uint64 {
	if y == 1<<63 {
		return 1 << scoreBits
	}
	var r uint64
	for bit := uint64(1) << (scoreBits - 1); bit > 0; bit >>= 1 {
		hi, lo := bits.Mul64(y, y)
		y = hi<<2 | lo>>62 // y*y in the same fixed point, below 4
		if y >= 1<<63 {
			y >>= 1
			r |= bit
		}
	}
	return r
}
