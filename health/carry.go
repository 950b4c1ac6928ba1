package health

// Inherit carries over, to each backend s shares with prev (the same
// *backend.Backend), the health state prev built up: the verdict, the
// streaks of probe results and of passive failures, the last result. A
// reload that keeps a backend and its frontend's check settings thus loses
// nothing of what the checks learnt. Call it after prev has stopped and
// before s runs; backends new to s start as New says.
func (s *Scheduler) Inherit(prev *Scheduler) {
	if prev == nil || s.started.Load() {
		return
	}
	for _, t := range s.targets {
		old := prev.byBackend[t.b]
		if old == nil {
			continue
		}
		st := *old.state.Load()
		t.tr.up, t.tr.successes, t.tr.failures = st.Up, st.Successes, st.Failures
		t.state.Store(&st)
		t.passive.Store(old.passive.Load())
		t.lastFailure.Store(old.lastFailure.Load())
		if c := old.passiveCause.Load(); c != nil {
			t.passiveCause.Store(c)
		}
	}
}
