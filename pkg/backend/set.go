package backend

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Preparer precomputes what a strategy needs from a snapshot (a round-robin
// schedule, a maglev table) when the Set builds it, so that picking only
// reads. Prepare runs with the Set's rebuild lock held, never concurrently
// for one Set; it must not call the setters of the Set's backends. Its result
// is what Snapshot.Prepared returns.
type Preparer interface {
	Prepare(s *Snapshot) any
}

// Set is the backends of one frontend. It publishes an immutable Snapshot
// through an atomic pointer: Load is one atomic read, and every change builds
// and publishes a whole new snapshot (copy-on-write). Builds are serialised
// by a mutex that only the control path and cap crossings take.
type Set struct {
	members   []*Backend // configuration order; guarded by mu (Apply changes it)
	prep      Preparer
	slowStart time.Duration
	now       func() time.Time

	snap atomic.Pointer[Snapshot]
	// published is members for lock-free readers; Apply replaces it.
	published atomic.Pointer[[]*Backend]
	pending   atomic.Bool // a hot-path rebuild is requested and not yet started
	closed    atomic.Bool

	mu        sync.Mutex  // serialises builds
	rampTimer *time.Timer // guarded by mu; fires at the next slow start step
}

// NewSet adopts members (their changes are reported to this Set from now
// on, see the package doc on reload), builds the first snapshot with p, and
// returns the Set. p may be nil when no strategy needs prepared data.
// slowStart is the ramp window of recovered backends (0 turns slow start
// off): a backend that comes back up, or out of Maint, starts at a tenth of
// its weight and climbs linearly to all of it over the window, in 20 steps.
// Snapshots follow the ramp by themselves: a timer rebuilds at each step, so
// no caller has to tick.
//
// It fails, with an error wrapping ErrInvalid, on a nil backend, two backends
// with the same name, or a negative slowStart.
func NewSet(members []*Backend, p Preparer, slowStart time.Duration) (*Set, error) {
	return newSet(members, p, slowStart, time.Now)
}

func newSet(members []*Backend, p Preparer, slowStart time.Duration, now func() time.Time) (*Set, error) {
	if slowStart < 0 {
		return nil, fmt.Errorf("negative slow start %v: %w", slowStart, ErrInvalid)
	}
	names := make(map[string]bool, len(members))
	for i, b := range members {
		if b == nil {
			return nil, fmt.Errorf("backend #%d is nil: %w", i, ErrInvalid)
		}
		if names[b.name] {
			return nil, fmt.Errorf("backend %q listed twice: %w", b.name, ErrInvalid)
		}
		names[b.name] = true
	}
	s := &Set{members: slices.Clone(members), prep: p, slowStart: slowStart, now: now}
	published := s.members // its own variable: Apply reassigns s.members
	s.published.Store(&published)
	// Adopt before the first build: a change landing in between is then
	// reported here and rebuilt after it, never lost to the previous owner.
	for _, b := range s.members {
		b.owner.Store(s)
	}
	s.rebuild()
	return s, nil
}

// Load returns the current snapshot: one atomic read, never nil.
func (s *Set) Load() *Snapshot { return s.snap.Load() }

// Backends returns every backend of the Set in configuration order,
// whatever its state (for stats, admin and health checks): the members now,
// which Apply may change. The slice is shared: do not modify it.
func (s *Set) Backends() []*Backend { return *s.published.Load() }

// Close freezes the Set: its snapshot no longer changes and its slow start
// timer stops. Call it when a reload retires the Set; Load keeps working.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	if s.rampTimer != nil {
		s.rampTimer.Stop()
	}
}

// rebuild builds and publishes a snapshot from the backends' current state.
// It is also the slow start timer's callback.
func (s *Set) rebuild() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rebuildLocked()
}

// requestRebuild asks for a rebuild without blocking, for the hot path. While
// one request waits for the lock, further requests coalesce into it.
func (s *Set) requestRebuild() {
	if s.closed.Load() || !s.pending.CompareAndSwap(false, true) {
		return
	}
	go s.rebuildRequested()
}

func (s *Set) rebuildRequested() {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Cleared under the lock and before reading any backend: a crossing
	// after this point requests a rebuild of its own, and at most one
	// requester waits here at a time.
	s.pending.Store(false)
	s.rebuildLocked()
}

func (s *Set) rebuildLocked() {
	if s.closed.Load() {
		return
	}
	now := s.now().UnixNano()
	snap, next, ramping := buildSnapshot(s.members, s.slowStart, now)
	if s.prep != nil {
		snap.prepared = s.prep.Prepare(snap)
	}
	s.snap.Store(snap)

	switch {
	case !ramping:
		if s.rampTimer != nil {
			s.rampTimer.Stop()
		}
	case s.rampTimer == nil:
		s.rampTimer = time.AfterFunc(time.Duration(next-now), s.rebuild)
	default:
		s.rampTimer.Reset(time.Duration(next - now))
	}
}
