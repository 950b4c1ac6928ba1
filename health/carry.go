package health

// Inherit carries over, to each backend s shares with prev (the same
// *backend.Backend), the health state prev built up: the verdict, the
// streaks of probe results and of passive failures, the last result, the
// probe counters (see InheritCounters), and for a role = "primary"
// frontend the primaries' standing and the highest epoch seen (so an old
// primary stays stale across a reload). A reload that keeps a backend and
// its frontend's check settings thus loses nothing of what the checks
// learnt. Call it after prev has stopped and
// before s runs; backends new to s start as New says.
func (s *Scheduler) Inherit(prev *Scheduler) {
	if prev == nil || s.started.Load() {
		return
	}
	view, prevView := s.view.Load(), prev.view.Load()
	if s.primary != nil && prev.primary != nil {
		s.primary.inherit(prev.primary, func(old *target) *target { return view.by[old.b] })
	}
	for _, t := range view.list {
		old := prevView.by[t.b]
		if old == nil {
			continue
		}
		st := *old.state.Load()
		t.tr.up, t.tr.successes, t.tr.failures = st.Up, st.Successes, st.Failures
		t.state.Store(&st)
		t.passive.Store(old.passive.Load())
		t.carryCounters(old)
		t.lastFailure.Store(old.lastFailure.Load())
		if c := old.passiveCause.Load(); c != nil {
			t.passiveCause.Store(c)
		}
	}
}

// InheritCounters carries over, to each backend s shares with prev, the
// counts of probes run, skipped and connections opened, and nothing of the
// verdict: for a reload that changed the check settings, so the counters
// of a kept backend keep rising. Call it as Inherit.
func (s *Scheduler) InheritCounters(prev *Scheduler) {
	if prev == nil || s.started.Load() {
		return
	}
	prevView := prev.view.Load()
	for _, t := range s.view.Load().list {
		if old := prevView.by[t.b]; old != nil {
			t.carryCounters(old)
		}
	}
}

// carryCounters adds old's counters to t's.
func (t *target) carryCounters(old *target) {
	t.probes.Add(old.probes.Load())
	t.skipped.Add(old.skipped.Load())
	t.sess.opened.Add(old.sess.opened.Load())
}
