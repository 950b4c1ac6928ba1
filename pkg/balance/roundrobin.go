package balance

import (
	"sync/atomic"

	"github.com/splicerlb/splicer/pkg/backend"
)

// roundRobin is smooth weighted round-robin (nginx's algorithm) with the
// whole cycle expanded into a schedule when the snapshot is built: Pick is
// one atomic add and an index. Over every full cycle each backend is picked
// exactly its weight's share of times, interleaved (5:1:1 gives a a b a c a
// a). The counter lives in the strategy, not the snapshot, so a rebuild
// continues the rotation instead of restarting it at the schedule's head.
type roundRobin struct {
	_    [64]byte // every pick writes next: keep it off neighbours' lines
	next atomic.Uint64
	_    [56]byte
}

// rrSchedule is one cycle of picks: indexes into the snapshot's backends.
type rrSchedule struct {
	picks []uint32
}

func (*roundRobin) Name() string { return RoundRobin }

// Prepare expands the snapshot's effective weights into a schedule.
func (*roundRobin) Prepare(s *backend.Snapshot) any {
	weights := make([]uint32, s.Len())
	for i := range weights {
		weights[i] = s.Weight(i)
	}
	return &rrSchedule{picks: smoothSchedule(weights)}
}

// Pick returns the next backend of the schedule.
func (r *roundRobin) Pick(s *backend.Snapshot, _ uint64) *backend.Backend {
	sched, _ := s.Prepared().(*rrSchedule)
	if sched == nil || len(sched.picks) == 0 {
		return nil
	}
	n := r.next.Add(1) - 1
	return s.Backend(int(sched.picks[n%uint64(len(sched.picks))]))
}

// smoothSchedule returns one cycle of nginx's smooth weighted round-robin
// over weights (all positive): entry t is the index nginx picks at step t+1
// when every current weight starts at 0. The cycle has sum(weights)/gcd
// entries: at most backend.MaxWeight per backend.
//
// nginx adds each weight to its backend's current value, picks the largest
// (the lowest index on a tie) and subtracts the total from it: O(backends)
// per step, too slow for a thousand backends with a cycle of 10^5 steps. This
// computes the same sequence in O(log(distinct weights)) per step. With
// weights reduced by their gcd, total their sum and k a backend's picks so
// far, its current value at step t is the line t*w - total*k, so:
//   - Backends of equal weight take their turns in index order, so a group
//     of them acts as one candidate: the member due next, whose k is the
//     group's picks divided by its size. There are at most MaxWeight groups.
//   - Picking the largest of the groups' lines at increasing t is the job
//     of a kinetic tournament (see tournament.go).
func smoothSchedule(weights []uint32) []uint32 {
	if len(weights) == 0 {
		return nil
	}
	g := weights[0]
	for _, w := range weights[1:] {
		g = gcd(g, w)
	}
	type group struct {
		members []uint32 // backend indexes, ascending
		next    int      // position of the member due next
	}
	var (
		groups []group
		lines  []line // one per group
		byW    = make(map[uint32]int)
		total  int64
	)
	for i, w := range weights {
		w /= g
		total += int64(w)
		gi, ok := byW[w]
		if !ok {
			gi = len(groups)
			byW[w] = gi
			groups = append(groups, group{})
			lines = append(lines, line{slope: int64(w), idx: uint32(i)})
		}
		groups[gi].members = append(groups[gi].members, uint32(i))
	}

	tour := newTournament(lines)
	picks := make([]uint32, total)
	for t := int64(1); t <= total; t++ {
		gi := tour.best(t)
		gr := &groups[gi]
		picks[t-1] = gr.members[gr.next]
		l := tour.leaf(gi)
		if gr.next++; gr.next == len(gr.members) {
			gr.next = 0
			l.icpt -= total // every member picked once more: k+1
		}
		l.idx = gr.members[gr.next]
		tour.set(gi, l)
	}
	return picks
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
