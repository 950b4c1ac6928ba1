package health

import (
	"math"
	"sync/atomic"
	"time"
)

// traffic is what the data plane reported of one target, for
// probe_when_idle_only: when it last saw the backend serve, and how many
// failures it saw. Reports are lock-free; a success writes shared memory
// at most a few times per proof window, not once per connection.
type traffic struct {
	// lastServed is when the latest success was reported, in the
	// Scheduler's clock (see Scheduler.now), to within proofGrain.
	lastServed atomic.Int64
	troubles   atomic.Uint64 // failures reported, ever
	seen       uint64        // troubles at the previous probe time; the watch goroutine's
}

// neverServed is lastServed before the first success: older than any
// proof window.
const neverServed = math.MinInt64 / 2

// served records a success at now. It stores only when the stored time is
// grain or more behind, so the time kept may lag by up to grain, which
// errs on the side of probing.
func (tr *traffic) served(now, grain int64) {
	if now-tr.lastServed.Load() >= grain {
		tr.lastServed.Store(now)
	}
}

// failed records a failure; none is lost at a probe time.
func (tr *traffic) failed() { tr.troubles.Add(1) }

// proves reports, at a probe time now, whether the traffic since the
// previous probe time proved the backend: a success within age before now
// and no failure since the previous call.
func (tr *traffic) proves(now, age int64) bool {
	n := tr.troubles.Load()
	clean := n == tr.seen
	tr.seen = n
	return clean && now-tr.lastServed.Load() <= age
}

// now is the Scheduler's clock for traffic reports: monotonic nanoseconds
// since New.
func (s *Scheduler) now() int64 { return int64(s.clock.now().Sub(s.epoch)) }

// proofAge is how recent a success must be to stand for a probe: half
// of timeout, or of interval when shorter. A backend that dies just after
// its last proof is probed within proofAge + interval of its death, so it
// is marked down within fall × interval + proofAge: inside the bound of
// fall × interval + timeout that holds when every probe runs, with half a
// timeout left for the probes' own time.
func (s *Scheduler) proofAge() time.Duration { return min(s.timeout, s.interval) / 2 }

// proofGrain is the resolution of the success times kept: an eighth of
// the proof age.
func (s *Scheduler) proofGrain() int64 { return int64(s.proofAge() / 8) }

// provedByTraffic reports, at t's probe time, whether its probe may be
// skipped: s probes only idle backends, t is up with no streak against
// it, the data plane saw it serve within proofAge, and saw no failure
// since the previous probe time. A backend that is down, or whose verdict
// is being questioned, is always probed.
func (s *Scheduler) provedByTraffic(t *target) bool {
	if !s.idleOnly {
		return false
	}
	return t.traffic.proves(s.now(), int64(s.proofAge())) && t.tr.up && !t.tr.changing()
}
