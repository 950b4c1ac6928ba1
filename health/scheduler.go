package health

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// ErrStarted is returned by Run on a Scheduler that has run before.
var ErrStarted = errors.New("health: scheduler already started")

// Scheduler runs the active health checks of one frontend's backends and
// takes in the data plane's passive reports. It owns one goroutine per
// backend while Run runs; verdicts reach the backends through SetHealthy.
type Scheduler struct {
	interval, fastInterval, downInterval, timeout time.Duration
	passiveFall                                   int32

	rise, fall int

	checker Checker
	// idleOnly skips the probe of a backend the data plane's traffic
	// proved since the previous probe time (probe_when_idle_only); epoch
	// starts the clock of its reports.
	idleOnly bool
	epoch    time.Time
	// clock paces the probes and stamps what is recorded (see clock).
	clock clock
	// passiveOnly is set by NewPassive: nothing is probed, and a backend
	// taken down comes back on trial after downInterval.
	passiveOnly bool
	// primary arbitrates a role = "primary" frontend: nil otherwise.
	primary  *arbiter
	onChange func(b *backend.Backend, up bool, r Result) (closed int)
	log      zerolog.Logger
	started  atomic.Bool

	// view is the backends under watch, replaced whole by SetBackends:
	// ReportFailure and State read it with one atomic load.
	view atomic.Pointer[targetView]
	// mu serialises SetBackends and guards the run state below.
	mu      sync.Mutex
	runCtx  context.Context // Run's; nil before Run
	stopped bool            // Run's ctx is done: no goroutine may start
	wg      sync.WaitGroup  // one per watch goroutine
	seq     int             // numbers targets in the order they came
}

// targetView is an immutable set of targets.
type targetView struct {
	list []*target // in the order given to New or SetBackends
	by   map[*backend.Backend]*target
}

// New builds a Scheduler probing backends with checker on h's timing: the
// first probe of each backend at a random point in [0, interval), then every
// interval while nothing changes, every fast_interval while a streak
// contradicts the verdict, every down_interval while down (0 for either
// means interval). Each probe gets h.Timeout. Backends start with the
// verdict they carry (a new Backend is up, so traffic flows from the start;
// one kept across a reload keeps its verdict), and every flip needs a full
// streak: h.Fall failures to go down, h.Rise successes to come up.
//
// On every flip the Scheduler calls b.SetHealthy, then onChange (when not
// nil) from the backend's probe goroutine, so onChange must not block for
// long; it returns the number of connections it closed. Then one line is
// logged: info when up, warn when down, with the backends left up and the
// connections closed. Backends in Maint
// are not probed and keep their verdict. For h.Check "none" use NewPassive,
// or build no Scheduler at all. The error wraps ErrConfig.
//
// With h.ProbeWhenIdleOnly, a probe time is skipped for a backend that is
// up, with no streak against it, that the data plane reported serving
// (ReportSuccess) within half of h.Timeout (of h.Interval if shorter) and
// never failing (ReportFailure) since the previous probe time: the caller
// must then feed both reports. A backend that dies is so still marked down
// within fall × interval + timeout. It cannot be combined with h.Role,
// which traffic does not prove.
//
// Each backend's probes share a session: an http checker with keep-alive
// keeps its connection there from one probe to the next, and it is closed
// when the backend stops being watched or is in Maint; State counts the
// connections opened.
func New(h config.Health, checker Checker, backends []*backend.Backend, onChange func(b *backend.Backend, up bool, r Result) (closed int), log zerolog.Logger) (*Scheduler, error) {
	switch {
	case checker == nil:
		return nil, fmt.Errorf("no checker: %w", ErrConfig)
	case h.Interval <= 0 || h.Timeout <= 0 || h.FastInterval < 0 || h.DownInterval < 0:
		return nil, fmt.Errorf("health intervals and timeout must be positive: %w", ErrConfig)
	case h.Rise < 1 || h.Fall < 1 || h.PassiveFall < 0:
		return nil, fmt.Errorf("health rise %d, fall %d, passive_fall %d: rise and fall must be at least 1: %w", h.Rise, h.Fall, h.PassiveFall, ErrConfig)
	case h.ProbeWhenIdleOnly && h.Role != "":
		return nil, fmt.Errorf("probe_when_idle_only with role %q: traffic does not prove a role: %w", h.Role, ErrConfig)
	}
	s := &Scheduler{
		interval:     h.Interval,
		fastInterval: orDefault(h.FastInterval, h.Interval),
		downInterval: orDefault(h.DownInterval, h.Interval),
		timeout:      h.Timeout,
		passiveFall:  int32(h.PassiveFall),
		rise:         h.Rise,
		fall:         h.Fall,
		idleOnly:     h.ProbeWhenIdleOnly,
		epoch:        time.Now(),
		clock:        realClock{},
		checker:      checker,
		onChange:     onChange,
		log:          log,
	}
	if h.Role == config.RolePrimary {
		s.primary = newArbiter()
	}
	s.view.Store(&targetView{})
	if err := s.SetBackends(backends); err != nil {
		return nil, err
	}
	return s, nil
}

// SetBackends makes backends the ones s watches, for a frontend whose
// backends change at runtime (discovery). A backend already watched keeps
// its goroutine, streaks and state; a new one starts with the verdict it
// carries (a new Backend is up) and, while Run runs, is probed from now on,
// its first probe at a random point within interval; one left out stops
// being probed (a probe in flight is cut short) and its passive reports
// are ignored from then on. It fails, changing nothing, on a nil backend or
// one listed twice. Safe for concurrent use, before, during or after Run.
func (s *Scheduler) SetBackends(backends []*backend.Backend) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.view.Load()
	next := &targetView{by: make(map[*backend.Backend]*target, len(backends))}
	var added []*target
	for _, b := range backends {
		if b == nil {
			return fmt.Errorf("nil backend: %w", ErrConfig)
		}
		if next.by[b] != nil {
			return fmt.Errorf("backend %q listed twice: %w", b.Name(), ErrConfig)
		}
		t := old.by[b]
		if t == nil {
			t = newTarget(b, s.rise, s.fall)
			s.seq++
			t.order = s.seq
			added = append(added, t)
		}
		next.list = append(next.list, t)
		next.by[b] = t
	}
	for _, t := range old.list {
		if next.by[t.b] == nil {
			if t.cancel != nil {
				t.cancel()
			}
			s.primary.forget(t)
		}
	}
	s.view.Store(next)
	if s.runCtx != nil && !s.stopped {
		for _, t := range added {
			s.launch(t)
		}
	}
	return nil
}

// launch starts t's goroutine; s.mu must be held, during Run.
func (s *Scheduler) launch(t *target) {
	ctx, cancel := context.WithCancel(s.runCtx)
	t.cancel = cancel
	if s.passiveOnly {
		s.wg.Go(func() { s.watchPassive(ctx, t) })
	} else {
		s.wg.Go(func() { s.watch(ctx, t) })
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Run probes every backend until ctx is done, then waits for every probe
// goroutine to return (a probe in flight is cut short by ctx and its result
// dropped) and returns nil. Run runs once; a second call returns ErrStarted.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.started.Swap(true) {
		return ErrStarted
	}
	s.mu.Lock()
	s.runCtx = ctx
	for _, t := range s.view.Load().list {
		s.launch(t)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// State returns a copy of b's health state; false when b is not one of the
// Scheduler's backends. Safe for concurrent use.
func (s *Scheduler) State(b *backend.Backend) (State, bool) {
	t := s.view.Load().by[b]
	if t == nil {
		return State{}, false
	}
	st := *t.state.Load()
	st.PassiveFailures = int(t.passive.Load())
	st.Probes, st.Skipped, st.Connections = t.probes.Load(), t.skipped.Load(), t.sess.opened.Load()
	return st, true
}

// NewPassive builds a Scheduler for a frontend whose check is "none" but
// whose passive_fall is set: no probe is ever sent, and a backend that
// passive detection takes down comes back on trial after h.DownInterval
// (h.Interval when 0), as nginx's max_fails and fail_timeout work; if it
// still fails, passive_fall more failures take it down again. Without
// this, a dead backend behind a frontend with no active check would keep
// its share of new clients. Two rules keep it from doing harm where no
// probe can correct it: a streak only counts failures less than
// down_interval apart (with no success ever reported, as behind a
// responses = 0 UDP frontend, failures days apart would add up), and the
// last backend up is never taken down (its clients would fail anyway, and
// then for down_interval longer). h.PassiveFall must be at least 1. The
// error wraps ErrConfig.
func NewPassive(h config.Health, backends []*backend.Backend, onChange func(b *backend.Backend, up bool, r Result) (closed int), log zerolog.Logger) (*Scheduler, error) {
	switch {
	case h.PassiveFall < 1:
		return nil, fmt.Errorf("passive_fall %d: a passive-only scheduler needs at least 1: %w", h.PassiveFall, ErrConfig)
	case h.ProbeWhenIdleOnly:
		return nil, fmt.Errorf("probe_when_idle_only: a passive-only scheduler sends no probe to skip: %w", ErrConfig)
	}
	s, err := New(h, noProbe{}, backends, onChange, log)
	if err != nil {
		return nil, err
	}
	s.passiveOnly = true
	return s, nil
}

// noProbe is the Checker of a NewPassive Scheduler, which never calls it.
type noProbe struct{}

// Check implements Checker.
func (noProbe) Check(context.Context, netip.AddrPort) Result {
	return Result{OK: true, Msg: "no probe"}
}

// ReportFailure records a failure the data plane saw on b (a refused or
// timed-out connect, a reset); cause says which. The passive_fall-th
// consecutive one takes b down at once, by waking b's probe goroutine;
// active probes then bring it back with rise (a passive-only Scheduler puts
// it back on trial instead, see NewPassive). With probe_when_idle_only it
// also makes b's next probe run. Without either, or for a backend the
// Scheduler does not know, it does nothing. Safe from any
// goroutine: it never blocks and allocates only when it reaches the
// threshold.
func (s *Scheduler) ReportFailure(b *backend.Backend, cause string) {
	t := s.view.Load().by[b]
	if t == nil {
		return
	}
	if s.idleOnly {
		t.traffic.failed()
	}
	if s.passiveFall == 0 {
		return
	}
	if s.passiveOnly {
		// A streak only spans failures less than down_interval apart.
		now := s.clock.now().UnixNano()
		if last := t.lastFailure.Swap(now); now-last >= int64(s.downInterval) {
			t.passive.Store(0)
		}
	}
	if t.passive.Add(1) != s.passiveFall {
		return
	}
	c := cause // a copy, so only this branch moves a string to the heap
	t.passiveCause.Store(&c)
	select {
	case t.wake <- struct{}{}:
	default: // a wake-up is already pending; it reads the latest cause
	}
}

// ReportSuccess records a connection the data plane saw b serve (its
// first byte, or a clean end), which resets b's passive failure streak
// and, with probe_when_idle_only, counts toward skipping b's next probe.
// Safe from any goroutine; it never blocks, allocates nothing, and writes
// shared memory only to end a streak or, with probe_when_idle_only, at
// most once per sixteenth of the timeout (of the interval, if shorter) to
// note when b last served.
func (s *Scheduler) ReportSuccess(b *backend.Backend) {
	t := s.view.Load().by[b]
	if t == nil {
		return
	}
	if t.passive.Load() != 0 {
		t.passive.Store(0)
	}
	if s.idleOnly {
		t.traffic.served(s.now(), s.proofGrain())
	}
}
