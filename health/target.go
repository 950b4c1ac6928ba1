package health

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
)

// target is one backend under watch. Its tracker belongs to its watch
// goroutine; everything else is shared through atomics.
type target struct {
	b  *backend.Backend
	tr tracker

	// wake carries "passive_fall reached" from ReportFailure to watch; its
	// buffer of one lets the sender never block.
	wake         chan struct{}
	passive      atomic.Int32 // consecutive passive failures
	passiveCause atomic.Pointer[string]
	lastFailure  atomic.Int64 // unix nanoseconds of the latest, passive-only mode

	// state is the immutable snapshot State copies, replaced by watch.
	state atomic.Pointer[State]

	// demote carries "superseded by another primary" from the arbiter to
	// watch, with its cause in demoteCause; a buffer of one, like wake.
	demote      chan struct{}
	demoteCause atomic.Pointer[string]

	// sess is what the probes keep between checks: the kept-alive http
	// connection and the count of connections opened.
	sess session
	// traffic is the data plane's reports for probe_when_idle_only.
	traffic traffic
	// probes and skipped count the probes run and those left out for
	// traffic that proved the backend.
	probes, skipped atomic.Uint64

	// order ranks targets added at the same time (config order); cancel
	// stops the target's goroutine (set by launch, under Scheduler.mu).
	order  int
	cancel context.CancelFunc
}

func newTarget(b *backend.Backend, rise, fall int) *target {
	t := &target{
		b:      b,
		tr:     tracker{rise: rise, fall: fall, up: b.Healthy()},
		wake:   make(chan struct{}, 1),
		demote: make(chan struct{}, 1),
	}
	t.state.Store(&State{Up: t.tr.up})
	t.traffic.lastServed.Store(neverServed)
	return t
}

// watch probes t until ctx is done: first at a random point in [0,
// interval) so a frontend's probes do not start as one herd, then at the
// pace nextDelay picks, each wait ending on align's grid. It also applies
// the passive verdicts ReportFailure signals.
func (s *Scheduler) watch(ctx context.Context, t *target) {
	timer := s.clock.newTimer(s.align(rand.N(s.interval), s.interval, true))
	defer timer.Stop()
	defer t.sess.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
			s.passiveDown(t)
		case <-t.demote:
			s.demoteDown(t)
		case <-timer.ch():
			proved := s.provedByTraffic(t)
			switch {
			case t.b.State() == backend.Maint:
				// Not probed: nor is a connection kept open to it.
				t.sess.close()
			case proved:
				t.skipped.Add(1)
			default:
				s.probe(ctx, t)
			}
			d := s.nextDelay(&t.tr)
			timer.Reset(s.align(d, d, false))
		}
	}
}

// watchPassive is watch for a passive-only Scheduler: nothing is probed;
// a backend passive detection took down is put back on trial after
// down_interval.
func (s *Scheduler) watchPassive(ctx context.Context, t *target) {
	timer := s.clock.newTimer(s.downInterval)
	defer timer.Stop()
	var trial <-chan time.Time // armed while t is down
	if t.tr.up {
		timer.Stop()
	} else {
		trial = timer.ch()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
			if s.lastUp(t) {
				// Taking it out would leave no backend at all.
				t.passive.Store(0)
				continue
			}
			s.passiveDown(t)
			if trial == nil && !t.tr.up {
				timer.Reset(s.downInterval)
				trial = timer.ch()
			}
		case <-trial:
			if t.b.State() == backend.Maint {
				// Maint keeps the verdict; try again later.
				timer.Reset(s.downInterval)
				continue
			}
			trial = nil
			t.passive.Store(0)
			r := Result{OK: true, Msg: "passive: back on trial after down_interval"}
			t.tr.up = true
			s.publish(t, r, true)
			s.announce(t.b, true, r)
		}
	}
}

// lastUp reports whether t is the only backend of the Scheduler still up.
func (s *Scheduler) lastUp(t *target) bool {
	for _, o := range s.view.Load().list {
		if o != t && o.b.Healthy() {
			return false
		}
	}
	return t.tr.up
}

// nextDelay is the wait before t's next probe.
func (s *Scheduler) nextDelay(tr *tracker) time.Duration {
	switch {
	case tr.changing():
		return s.fastInterval
	case !tr.up:
		return s.downInterval
	}
	return s.interval
}

// probe runs one active check of t and applies its result.
func (s *Scheduler) probe(ctx context.Context, t *target) {
	pctx, cancel := context.WithTimeout(withSession(ctx, &t.sess), s.timeout)
	t.probes.Add(1)
	r := s.checker.Check(pctx, t.b.Address())
	cancel()
	if ctx.Err() != nil {
		return // shutting down: a probe cut short says nothing of the backend
	}
	t.b.ObserveCheck(r.OK, r.Duration)
	if r.OK {
		t.passive.Store(0) // any success ends a passive streak
	}
	if s.primary != nil {
		var superseded bool
		if r, superseded = s.primary.judge(t, r); superseded && t.tr.markDown() {
			// Another backend is the primary: out at once, not after
			// a streak, so no client writes to two primaries.
			s.publish(t, r, true)
			s.announce(t.b, false, r)
			return
		}
	}
	flipped := t.tr.observe(r.OK)
	s.publish(t, r, flipped)
	if flipped {
		s.announce(t.b, t.tr.up, r)
	}
	if s.primary != nil && t.tr.up && r.OK {
		s.primary.demoteOthers(t)
	}
}

// demoteDown takes t down because another backend became the primary.
func (s *Scheduler) demoteDown(t *target) {
	r := Result{Msg: *t.demoteCause.Load()}
	if t.tr.markDown() {
		s.publish(t, r, true)
		s.announce(t.b, false, r)
	}
}

// passiveDown applies a passive_fall streak to t.
func (s *Scheduler) passiveDown(t *target) {
	r := Result{Msg: "passive: " + *t.passiveCause.Load()}
	t.passive.Store(0)
	if t.tr.markDown() {
		s.publish(t, r, true)
		s.announce(t.b, false, r)
	}
}

// publish replaces t's State snapshot after a result.
func (s *Scheduler) publish(t *target, r Result, flipped bool) {
	now := s.clock.now()
	prev := t.state.Load()
	next := &State{
		Up:         t.tr.up,
		Last:       r,
		LastCheck:  now,
		LastChange: prev.LastChange,
		Successes:  t.tr.successes,
		Failures:   t.tr.failures,
	}
	if flipped {
		next.LastChange = now
	}
	t.state.Store(next)
}

// announce reports a flip: to the backend (a new snapshot), to onChange and
// in one log line, which says what the result was (the probe's summary
// when up, the error when down), how many of the frontend's backends are
// up now and how many connections onChange closed.
func (s *Scheduler) announce(b *backend.Backend, up bool, r Result) {
	b.SetHealthy(up)
	closed := 0
	if s.onChange != nil {
		closed = s.onChange(b, up, r)
	}
	view := s.view.Load()
	healthy := 0
	for _, t := range view.list {
		if t.b.Healthy() {
			healthy++
		}
	}
	ev, msg, result := s.log.Warn(), "backend down", "error"
	if up {
		ev, msg, result = s.log.Info(), "backend up", "check"
	}
	ev = ev.Str("backend", b.Name()).Stringer("backend_address", b.Address()).Str(result, r.Msg)
	if r.Duration > 0 {
		ev = ev.Float64("check_seconds", r.Duration.Seconds())
	}
	ev.Int("backends_up", healthy).Int("backends", len(view.list)).Int("connections_closed", closed).Msg(msg)
}

// align moves the end of d, a wait from now, onto a grid of absolute time
// whose step, the grain, is a twentieth of period in whole milliseconds
// (periods under 100 ms are left alone): probes due within the same grain start
// together, on one wake-up of the runtime and of its monitor thread,
// instead of one wake-up each, which is most of what a connect probe
// costs. A wait then ends up to a grain later (down: earlier) than asked;
// once on the grid, a probe every interval stays exactly interval apart
// (the probe's own time comes out of the next wait), as twenty grains is
// the interval. The first wait, a random point in [0, interval), is
// aligned down on the interval's grid, so that it stays below the
// interval.
func (s *Scheduler) align(d, period time.Duration, down bool) time.Duration {
	grain := int64(period / 20 / time.Millisecond * time.Millisecond)
	if grain < int64(5*time.Millisecond) {
		return d
	}
	now := s.clock.now().UnixNano()
	at := now + int64(d)
	if down {
		at -= at % grain
	} else {
		at += grain - 1
		at -= at % grain
	}
	return time.Duration(max(at-now, 0))
}
