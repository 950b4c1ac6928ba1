package timer

import (
	"math"
	"time"
)

const (
	// minTick is the shortest tick: epoll_wait cannot sleep for less.
	minTick = time.Millisecond
	// maxSlots bounds the slot array a caller can ask for.
	maxSlots = 1 << 20
	// noDue is the min of an empty slot: later than any due tick.
	noDue = math.MaxUint64
	// maxDuration is the largest time.Duration; offsets saturate at it.
	maxDuration = time.Duration(math.MaxInt64)
)

// Timer is a one-shot timer, embedded by value in the struct it times
// out (a connection, a UDP flow) so that arming it allocates nothing. The
// zero value is a stopped timer with no callback.
type Timer struct {
	// Fire is called by Wheel.Advance when the timer expires, after the
	// timer is disarmed, so it may Schedule the timer again. Set it once,
	// before the first Schedule; a nil Fire expires silently.
	Fire func()

	// prev and next link the timer into a slot's list, or into the
	// wheel's expired list during Advance; both are nil when stopped.
	prev, next *Timer
	due        uint64 // absolute tick at which the timer fires
}

// Armed reports whether t is scheduled and has not fired or been stopped.
func (t *Timer) Armed() bool { return t.next != nil }

// insertBefore links t before list's sentinel, at the tail.
func (t *Timer) insertBefore(list *Timer) {
	t.prev = list.prev
	t.next = list
	list.prev.next = t
	list.prev = t
}

func (t *Timer) unlink() {
	t.prev.next = t.next
	t.next.prev = t.prev
	t.prev, t.next = nil, nil
}

// slot holds the timers whose due tick is congruent to its index modulo
// the slot count, whatever the revolution.
type slot struct {
	head Timer // sentinel of a circular list
	// min is a lower bound on the due ticks in the list (noDue when the
	// list is empty): exact after Advance visits the slot, possibly low
	// after a Stop. It lets Next skip a slot without walking its list.
	min uint64
}

// Wheel is a hashed timing wheel. Create it with New; it is owned by one
// goroutine and not safe for concurrent use.
type Wheel struct {
	tick  time.Duration
	start time.Time
	// now is the latest time passed to Advance (or New); Schedule
	// measures delays from it, as the loop's clock for this iteration.
	now time.Time
	// cur is the last tick Advance processed. Every timer in a slot has
	// due > cur.
	cur   uint64
	mask  uint64
	slots []slot
	// expired holds the timers Advance has taken out of their slots and
	// not fired yet; Stop and Schedule unlink them from it like from a slot.
	expired Timer
	n       int
	// low is a lower bound on every armed timer's due tick, 0 when it
	// must be recomputed; Next uses it so that it scans the slots at most
	// once per due tick rather than on every call.
	low uint64
}

// New returns a wheel whose ticks are tick long and start at now. tick is
// raised to 1ms when shorter; slots is rounded up to a power of two in
// [1, 1<<20]. A revolution (tick × slots) should cover the common
// timeouts: longer ones work but are skipped over once per revolution.
func New(tick time.Duration, slots int, now time.Time) *Wheel {
	tick = max(tick, minTick)
	n := 1
	for n < min(slots, maxSlots) {
		n <<= 1
	}
	w := &Wheel{tick: tick, start: now, now: now, mask: uint64(n - 1), slots: make([]slot, n)}
	for i := range w.slots {
		s := &w.slots[i]
		s.head.prev, s.head.next = &s.head, &s.head
		s.min = noDue
	}
	w.expired.prev, w.expired.next = &w.expired, &w.expired
	return w
}

// Schedule arms t to fire d after the time of the last Advance (or New),
// moving it if it is already armed. A negative d counts as 0; either way
// the timer fires no earlier than the next tick, never inside the Advance
// call that is running. O(1), no allocation.
func (w *Wheel) Schedule(t *Timer, d time.Duration) {
	if t.Armed() {
		t.unlink()
		w.n--
	}
	due := w.dueTick(max(d, 0))
	t.due = due
	s := &w.slots[due&w.mask]
	t.insertBefore(&s.head)
	s.min = min(s.min, due)
	if w.n == 0 || due < w.low {
		w.low = due
	}
	w.n++
}

// dueTick returns the first tick that starts at or after now+d and is
// still to be processed.
func (w *Wheel) dueTick(d time.Duration) uint64 {
	off := w.now.Sub(w.start) + d
	if off < d { // overflow: saturate
		off = maxDuration
	}
	due := uint64(off / w.tick)
	if off%w.tick != 0 {
		due++
	}
	return max(due, w.cur+1)
}

// Stop disarms t and reports whether it was armed. O(1).
func (w *Wheel) Stop(t *Timer) bool {
	if !t.Armed() {
		return false
	}
	t.unlink()
	w.n--
	return true
}

// Len returns the number of armed timers.
func (w *Wheel) Len() int { return w.n }

// Advance processes every tick that began at or before now and fires the
// timers due in them, returning how many fired. Within one call timers
// are not fired in deadline order. Callbacks may Schedule or Stop any
// timer, themselves included: a timer stopped before its turn does not
// fire, and a timer scheduled from a callback fires in a later Advance.
// A now earlier than a previous one is a no-op. Advance must not be
// called from a callback.
func (w *Wheel) Advance(now time.Time) int {
	if !now.After(w.now) {
		return 0
	}
	w.now = now
	target := w.tickAt(now)
	if target <= w.cur {
		return 0
	}
	// After a sleep of a revolution or more, each slot is visited once:
	// collect takes every due timer of a slot, whatever its revolution.
	steps := min(target-w.cur, uint64(len(w.slots)))
	for i := uint64(1); i <= steps; i++ {
		w.collect(&w.slots[(w.cur+i)&w.mask], target)
	}
	w.cur = target
	if w.low <= target {
		w.low = 0
	}
	return w.fireExpired()
}

// collect moves the timers of s due at or before target to the expired
// list and recomputes s.min exactly from those that remain.
func (w *Wheel) collect(s *slot, target uint64) {
	s.min = noDue
	for t := s.head.next; t != &s.head; {
		next := t.next
		if t.due <= target {
			t.unlink()
			t.insertBefore(&w.expired)
		} else {
			s.min = min(s.min, t.due)
		}
		t = next
	}
}

// fireExpired fires the collected timers one at a time, always taking
// the list head afresh, because a callback may stop or move any timer
// still in the list.
func (w *Wheel) fireExpired() int {
	fired := 0
	for w.expired.next != &w.expired {
		t := w.expired.next
		t.unlink()
		w.n--
		fired++
		if t.Fire != nil {
			t.Fire()
		}
	}
	return fired
}

// Next returns how long after now the next tick with a due timer begins,
// 0 if it has begun already, or -1 when no timer is armed. The loop uses
// it as its epoll_wait timeout, rounded up to a millisecond. After a Stop
// it may be early, never late: the wheel then wakes once for nothing
// rather than fire a timer late.
func (w *Wheel) Next(now time.Time) time.Duration {
	if w.n == 0 {
		return -1
	}
	if w.low == 0 {
		w.low = w.earliest()
	}
	return max(w.sinceStart(w.low)-now.Sub(w.start), 0)
}

// earliest returns a lower bound on the due ticks of the armed timers,
// scanning at most one revolution of slot bounds. Slot bounds are never
// below their slot's tick in the coming revolution, so the first slot
// whose bound equals that tick holds the earliest timer; failing that,
// the smallest bound is a later revolution's.
func (w *Wheel) earliest() uint64 {
	best := uint64(noDue)
	for i := uint64(1); i <= uint64(len(w.slots)); i++ {
		tick := w.cur + i
		m := w.slots[tick&w.mask].min
		if m == tick {
			return tick
		}
		best = min(best, m)
	}
	if best == noDue {
		// Only timers collected by a running Advance are armed: due now.
		return w.cur
	}
	return best
}

// tickAt returns the tick that contains now.
func (w *Wheel) tickAt(now time.Time) uint64 {
	return uint64(max(now.Sub(w.start), 0) / w.tick)
}

// sinceStart returns when tick k begins, as an offset from start,
// saturating instead of overflowing.
func (w *Wheel) sinceStart(k uint64) time.Duration {
	if k > uint64(maxDuration/w.tick) {
		return maxDuration
	}
	return time.Duration(k) * w.tick
}
