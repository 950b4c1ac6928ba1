package backend

import (
	"sync/atomic"
	"time"
)

// healthCounters count what health checking did to a backend. They live
// with the backend, not with the scheduler that checks it, so they go on
// across a reload that replaces the scheduler.
type healthCounters struct {
	passed, failed atomic.Uint64
	// checks is the time active probes took; the connect-time buckets
	// (100µs to 10s) fit probes as well.
	checks   Histogram
	up, down atomic.Uint64 // transitions to up, to down
	// changed is when the verdict last flipped (unix ns), or when the
	// backend was made.
	changed atomic.Int64
}

// ObserveCheck records one active health probe: whether it passed, and
// the time it took.
func (b *Backend) ObserveCheck(passed bool, d time.Duration) {
	if passed {
		b.health.passed.Add(1)
	} else {
		b.health.failed.Add(1)
	}
	b.health.checks.Observe(d)
}

// HealthCounters is a copy of a backend's health counters.
type HealthCounters struct {
	// Passed and Failed count active probes by outcome; Checks is the
	// histogram of their durations.
	Passed, Failed uint64
	Checks         Durations
	// Up and Down count the verdict's transitions to up and to down.
	Up, Down uint64
	// Changed is the time of the latest transition, or the time the
	// backend was made when it has had none.
	Changed time.Time
}

// HealthCounters returns a copy of the backend's health counters.
func (b *Backend) HealthCounters() HealthCounters {
	return HealthCounters{
		Passed:  b.health.passed.Load(),
		Failed:  b.health.failed.Load(),
		Checks:  b.health.checks.Read(),
		Up:      b.health.up.Load(),
		Down:    b.health.down.Load(),
		Changed: time.Unix(0, b.health.changed.Load()),
	}
}

// raisePeak makes p at least v.
func raisePeak(p *atomic.Int64, v int64) {
	for {
		cur := p.Load()
		if v <= cur || p.CompareAndSwap(cur, v) {
			return
		}
	}
}

// Peak is the most connections the backend held at once since it was
// made.
func (b *Backend) Peak() int64 { return b.peak.Load() }
