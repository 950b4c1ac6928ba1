package health

import "time"

// clock is a Scheduler's time source: the timers that pace its probes and
// its passive trials, and the times it records (State's LastCheck and
// LastChange, the spacing of passive failures, the age of the data plane's
// proofs, the order in which backends turned primary). A Scheduler runs on
// realClock; its tests give it a clock they move by hand, so they measure
// intervals exactly without sleeping. A probe's timeout stays on real time:
// the probe does real I/O.
type clock interface {
	now() time.Time
	newTimer(d time.Duration) timer
}

// timer is what a Scheduler uses of a *time.Timer.
type timer interface {
	// ch delivers the time the timer fired.
	ch() <-chan time.Time
	// Stop and Reset behave as time.Timer's do (since Go 1.23): after
	// either returns, no stale value is received.
	Stop() bool
	Reset(d time.Duration) bool
}

// realClock is the wall clock, with its monotonic reading.
type realClock struct{}

func (realClock) now() time.Time { return time.Now() }

func (realClock) newTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

// realTimer is a *time.Timer as a timer.
type realTimer struct{ *time.Timer }

func (t realTimer) ch() <-chan time.Time { return t.C }

// setClock makes c the Scheduler's clock; it must be called before Run.
// The clock of the traffic proofs starts again from c's now.
func (s *Scheduler) setClock(c clock) {
	s.clock = c
	s.epoch = c.now()
	if s.primary != nil {
		s.primary.now = c.now
	}
}
