package backend

import "time"

// Slow start ramps a recovered backend's effective weight linearly from a
// tenth of its weight to all of it over the Set's slow start window. The
// ramp moves in rampSteps equal steps, each one a snapshot rebuild, so a
// recovery costs a bounded number of rebuilds whatever the window (HAProxy
// makes the same trade with its twenty warm-up steps). Starting at a tenth
// rather than at nothing lets the backend warm up on real traffic from the
// first step.
const rampSteps = 20

// rampLevel returns how many steps of the ramp that began at since (unix ns)
// have passed at now: 0..rampSteps, where rampSteps means full weight. A zero
// since (never recovered) or window (slow start off) is full weight.
func rampLevel(since, now int64, window time.Duration) int64 {
	if since == 0 || window <= 0 {
		return rampSteps
	}
	elapsed := max(now-since, 0)
	if elapsed >= int64(window) {
		return rampSteps
	}
	return elapsed * rampSteps / int64(window)
}

// rampWeight returns weight full as slow start allows it at now: full times
// (1/10 + 9/10 * level/rampSteps), rounded up and at least 1.
func rampWeight(full uint32, since, now int64, window time.Duration) uint32 {
	level := rampLevel(since, now, window)
	if level == rampSteps {
		return full
	}
	num := uint64(full) * uint64(rampSteps+9*level)
	const den = 10 * rampSteps
	return uint32(max((num+den-1)/den, 1))
}

// nextRampStep returns when the ramp that began at since next moves up a
// step, and false when it is already complete at now.
func nextRampStep(since, now int64, window time.Duration) (int64, bool) {
	level := rampLevel(since, now, window)
	if level == rampSteps {
		return 0, false
	}
	return since + int64(window)*(level+1)/rampSteps, true
}
