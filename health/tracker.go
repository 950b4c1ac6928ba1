package health

// tracker is the rise/fall state machine of one backend. A verdict flips
// only on a full streak of results contradicting it: fall consecutive
// failures take an up backend down, rise consecutive successes bring a down
// one up. It is not safe for concurrent use: its target's goroutine owns it.
type tracker struct {
	rise, fall int
	up         bool
	// successes and failures are the current streaks; at most one is
	// non-zero once a result has been observed.
	successes, failures int
}

// observe records one active probe result and reports whether it flipped
// the verdict.
func (t *tracker) observe(ok bool) bool {
	if ok {
		t.successes++
		t.failures = 0
		if !t.up && t.successes >= t.rise {
			t.up = true
			return true
		}
		return false
	}
	t.failures++
	t.successes = 0
	if t.up && t.failures >= t.fall {
		t.up = false
		return true
	}
	return false
}

// markDown takes the backend down at once (passive detection) and reports
// whether it was up. Coming back needs a fresh streak of rise successes.
func (t *tracker) markDown() bool {
	if !t.up {
		return false
	}
	t.up = false
	t.successes = 0
	return true
}

// changing reports whether results contradicting the verdict are
// accumulating, which is when the scheduler probes at fast_interval.
func (t *tracker) changing() bool {
	return (t.up && t.failures > 0) || (!t.up && t.successes > 0)
}
