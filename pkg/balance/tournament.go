package balance

import "math"

// line is a candidate's value slope*t + icpt at step t; on equal values the
// lower idx wins, as nginx keeps the first maximum.
type line struct {
	slope, icpt int64
	idx         uint32
}

func (a line) at(t int64) int64 { return a.slope*t + a.icpt }

// beats reports whether a wins over b at step t.
func (a line) beats(b line, t int64) bool {
	va, vb := a.at(t), b.at(t)
	return va > vb || va == vb && a.idx < b.idx
}

// overtakenAt returns the first step after t at which b beats a, given that
// a beats b at t; never is math.MaxInt64.
func (a line) overtakenAt(b line, t int64) int64 {
	if b.slope <= a.slope {
		return math.MaxInt64
	}
	gap, closing := a.at(t)-b.at(t), b.slope-a.slope
	if b.idx < a.idx { // a tie goes to b; gap > 0, or b would win at t
		return t + (gap+closing-1)/closing
	}
	return t + gap/closing + 1
}

// tournament finds the best of a fixed number of lines at increasing steps:
// a kinetic tournament. Nodes 1..size-1 form a heap-ordered binary tree over
// leaves size..2size-1 (padding leaves never win). A node holds the winner of
// its subtree and the step until which that result holds: the step at which
// the loser of its own match overtakes the winner, or an earlier one from
// below. A query replays only the nodes whose time has come, and changing a
// line expires the nodes above it; so with one line changed per step, a step
// costs O(log lines) plus the overtakings, which are rare.
type tournament struct {
	size   int
	leaves []line  // by leaf number - size
	winner []int32 // by node; leaf number of the subtree's winner
	until  []int64 // by node; the winner holds for steps < until
}

func newTournament(lines []line) *tournament {
	size := 1
	for size < len(lines) {
		size *= 2
	}
	t := &tournament{
		size:   size,
		leaves: make([]line, size),
		winner: make([]int32, size),
		until:  make([]int64, size), // all 0: replayed at the first step
	}
	copy(t.leaves, lines)
	for i := len(lines); i < size; i++ {
		t.leaves[i] = line{icpt: math.MinInt64 / 2, idx: math.MaxUint32}
	}
	return t
}

// best returns the index of the winning line at step t; steps must not
// decrease between calls.
func (t *tournament) best(step int64) int {
	if t.expired(1, step) {
		t.replay(1, step)
	}
	return int(t.winnerOf(1)) - t.size
}

// leaf returns line i.
func (t *tournament) leaf(i int) line { return t.leaves[i] }

// set replaces line i and marks the nodes above it for replay.
func (t *tournament) set(i int, l line) {
	t.leaves[i] = l
	for n := (i + t.size) / 2; n >= 1; n /= 2 {
		t.until[n] = 0
	}
}

func (t *tournament) winnerOf(n int) int32 {
	if n >= t.size {
		return int32(n)
	}
	return t.winner[n]
}

func (t *tournament) untilOf(n int) int64 {
	if n >= t.size {
		return math.MaxInt64
	}
	return t.until[n]
}

// expired reports whether node n needs a replay at step.
func (t *tournament) expired(n int, step int64) bool {
	return n < t.size && t.until[n] <= step
}

// replay recomputes the expired node n, and the expired nodes below it, for
// step.
func (t *tournament) replay(n int, step int64) {
	if t.expired(2*n, step) {
		t.replay(2*n, step)
	}
	if t.expired(2*n+1, step) {
		t.replay(2*n+1, step)
	}
	a, b := t.winnerOf(2*n), t.winnerOf(2*n+1)
	la, lb := t.leaves[int(a)-t.size], t.leaves[int(b)-t.size]
	if !la.beats(lb, step) {
		a, la, lb = b, lb, la
	}
	t.winner[n] = a
	t.until[n] = min(la.overtakenAt(lb, step), t.untilOf(2*n), t.untilOf(2*n+1))
}
