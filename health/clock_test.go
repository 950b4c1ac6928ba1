package health

import (
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// fakeClock is a clock that moves only when a test advances it. Its
// timers fire inside advance, so whether a timer has fired by a given
// time is exact; what the Scheduler's goroutine then does happens on its
// own time, which a test waits for with waitArmed.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*fakeTimer
}

// newFakeClock returns a clock standing at an arbitrary, non-zero time.
func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

type fakeTimer struct {
	c     *fakeClock
	fire  chan time.Time
	when  time.Time
	armed bool
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) newTimer(d time.Duration) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, fire: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	t.arm(d)
	return t
}

// advance moves the clock d forward and fires every armed timer whose
// time has come.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	for _, t := range c.timers {
		if t.armed && !t.when.After(c.t) {
			t.armed = false
			t.fire <- c.t
		}
	}
}

// next returns how long until the earliest armed timer fires; false when
// none is armed.
func (c *fakeClock) next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first time.Time
	for _, t := range c.timers {
		if t.armed && (first.IsZero() || t.when.Before(first)) {
			first = t.when
		}
	}
	return first.Sub(c.t), !first.IsZero()
}

// armed counts the timers waiting to fire.
func (c *fakeClock) armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed {
			n++
		}
	}
	return n
}

// waitArmed waits until n timers are armed: the Scheduler's goroutines
// have handled what fired and wait for their next time.
func (c *fakeClock) waitArmed(t *testing.T, n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "armed timers", func() bool { return c.armed() == n })
}

func (t *fakeTimer) ch() <-chan time.Time { return t.fire }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	t.drain()
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.arm(d)
	return was
}

// arm sets t to fire d from now, with no stale value left; c.mu is held.
func (t *fakeTimer) arm(d time.Duration) {
	t.drain()
	t.when, t.armed = t.c.t.Add(d), true
	if d <= 0 {
		t.armed = false
		t.fire <- t.c.t
	}
}

func (t *fakeTimer) drain() {
	select {
	case <-t.fire:
	default:
	}
}

// TestFakeClock: timers fire when the clock reaches them, not before, and
// Stop and Reset leave no stale value.
func TestFakeClock(t *testing.T) {
	c := newFakeClock()
	start := c.now()
	tm := c.newTimer(time.Second)
	c.advance(999 * time.Millisecond)
	select {
	case <-tm.ch():
		t.Fatal("fired early")
	default:
	}
	if d, ok := c.next(); !ok || d != time.Millisecond {
		t.Fatalf("next = %v, %v; want 1ms", d, ok)
	}
	c.advance(time.Millisecond)
	if at := <-tm.ch(); !at.Equal(start.Add(time.Second)) {
		t.Fatalf("fired at %v, want %v", at, start.Add(time.Second))
	}
	c.advance(time.Hour)
	tm.Reset(time.Second)
	c.advance(time.Second)
	if tm.Stop() || c.armed() != 0 {
		t.Fatal("Stop after firing reported an armed timer")
	}
	select {
	case <-tm.ch():
		t.Fatal("a stale value after Stop")
	default:
	}
}
