package timer

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ceilTick returns the start of the first tick at or after t0+d: when a
// timer of delay d scheduled at t0 is due.
func ceilTick(d, tick time.Duration) time.Duration {
	return (d + tick - 1) / tick * tick
}

// simulateLoop drives w like the event loop: sleep for Next rounded up to
// a millisecond, then Advance. It returns the clock and the wake-up count
// once done reports true, failing after maxWakes.
func simulateLoop(t *testing.T, w *Wheel, now time.Time, maxWakes int, done func() bool) (time.Time, int) {
	t.Helper()
	for wakes := 1; wakes <= maxWakes; wakes++ {
		d := w.Next(now)
		if d < 0 {
			t.Fatalf("Next = -1 with %d timers armed", w.Len())
		}
		now = now.Add((d + time.Millisecond - 1).Truncate(time.Millisecond))
		w.Advance(now)
		if done() {
			return now, wakes
		}
	}
	t.Fatalf("not done after %d wake-ups", maxWakes)
	return now, 0
}

func TestFiresOnTimeDrivenByNext(t *testing.T) {
	tests := []struct {
		name  string
		tick  time.Duration
		slots int
		delay time.Duration
		wakes int // most wake-ups the loop may need
	}{
		{"zero delay", 10 * time.Millisecond, 64, 0, 1},
		{"sub-tick", 10 * time.Millisecond, 64, 3 * time.Millisecond, 1},
		{"on a tick", 10 * time.Millisecond, 64, 50 * time.Millisecond, 1},
		{"between ticks", 10 * time.Millisecond, 64, 55 * time.Millisecond, 1},
		{"several revolutions", 10 * time.Millisecond, 64, 2*time.Second + 7*time.Millisecond, 1},
		{"idle timeout 1h", 10 * time.Millisecond, 4096, time.Hour, 1},
		{"single slot", 10 * time.Millisecond, 1, 95 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(tt.tick, tt.slots, t0)
			fired := false
			tm := Timer{Fire: func() { fired = true }}
			w.Schedule(&tm, tt.delay)

			// It fired inside the Advance of the last wake-up, at firedAt.
			firedAt, wakes := simulateLoop(t, w, t0, 10, func() bool { return fired })
			if wakes > tt.wakes {
				t.Errorf("wake-ups = %d; want at most %d", wakes, tt.wakes)
			}
			deadline := t0.Add(tt.delay)
			want := t0.Add(max(ceilTick(tt.delay, tt.tick), tt.tick))
			if firedAt.Before(deadline) || firedAt.After(deadline.Add(tt.tick)) || !firedAt.Equal(want) {
				t.Fatalf("fired at +%v; deadline +%v; want +%v (first tick at or after it)", firedAt.Sub(t0), tt.delay, want.Sub(t0))
			}
			if tm.Armed() || w.Len() != 0 || w.Next(firedAt) != -1 {
				t.Fatalf("after firing: Armed %v, Len %d, Next %v; want false, 0, -1", tm.Armed(), w.Len(), w.Next(firedAt))
			}
		})
	}
}

func TestNext(t *testing.T) {
	const tick = 10 * time.Millisecond
	w := New(tick, 8, t0) // a revolution is 80ms
	if got := w.Next(t0); got != -1 {
		t.Fatalf("Next on empty wheel = %v; want -1", got)
	}
	var a, b, far Timer
	w.Schedule(&far, time.Second) // 12 revolutions away
	w.Schedule(&b, 45*time.Millisecond)
	w.Schedule(&a, 25*time.Millisecond)

	steps := []struct {
		name    string
		advance time.Duration // Advance to t0+advance first
		at      time.Duration // then Next(t0+at)
		want    time.Duration
	}{
		{"earliest of three", 0, 0, 30 * time.Millisecond},
		{"later in the same tick", 0, 29 * time.Millisecond, time.Millisecond},
		{"overdue is zero", 0, 31 * time.Millisecond, 0},
		{"after a fired", 30 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond},
		{"only a later revolution left", 50 * time.Millisecond, 50 * time.Millisecond, 950 * time.Millisecond},
	}
	for _, s := range steps {
		w.Advance(t0.Add(s.advance))
		if got := w.Next(t0.Add(s.at)); got != s.want {
			t.Fatalf("%s: Next = %v; want %v", s.name, got, s.want)
		}
	}
	w.Stop(&far)
	if got := w.Next(t0.Add(60 * time.Millisecond)); got != -1 {
		t.Fatalf("Next after stopping the last timer = %v; want -1", got)
	}
}

// TestNextAfterStop checks the documented trade-off: after the earliest
// timer is stopped, Next may be early but is never late, and is exact
// again once the stale bound has passed.
func TestNextAfterStop(t *testing.T) {
	const tick = 10 * time.Millisecond
	w := New(tick, 8, t0)
	var a, b Timer
	w.Schedule(&a, 20*time.Millisecond)
	w.Schedule(&b, 50*time.Millisecond)
	w.Stop(&a)
	if got := w.Next(t0); got <= 0 || got > 50*time.Millisecond {
		t.Fatalf("Next = %v; want in (0, 50ms]", got)
	}
	if n := w.Advance(t0.Add(20 * time.Millisecond)); n != 0 {
		t.Fatalf("Advance fired %d; want 0 (a was stopped)", n)
	}
	if got := w.Next(t0.Add(20 * time.Millisecond)); got != 30*time.Millisecond {
		t.Fatalf("Next = %v; want 30ms", got)
	}
}

func TestStop(t *testing.T) {
	w := New(10*time.Millisecond, 16, t0)
	fired := 0
	a := Timer{Fire: func() { fired++ }}
	var never Timer
	w.Schedule(&a, 30*time.Millisecond)

	if !a.Armed() || w.Len() != 1 {
		t.Fatalf("after Schedule: Armed %v, Len %d", a.Armed(), w.Len())
	}
	if !w.Stop(&a) || a.Armed() || w.Len() != 0 {
		t.Fatalf("first Stop: want true, then Armed false and Len 0")
	}
	if w.Stop(&a) || w.Stop(&never) {
		t.Fatal("Stop of a stopped or never-armed timer returned true")
	}
	if n := w.Advance(t0.Add(time.Second)); n != 0 || fired != 0 {
		t.Fatalf("Advance fired %d (callback ran %d); want 0", n, fired)
	}
}

func TestScheduleMovesArmedTimer(t *testing.T) {
	w := New(10*time.Millisecond, 16, t0)
	fired := 0
	a := Timer{Fire: func() { fired++ }}
	w.Schedule(&a, 30*time.Millisecond)
	w.Schedule(&a, time.Second) // later, and in another slot and revolution
	if w.Len() != 1 {
		t.Fatalf("Len = %d; want 1", w.Len())
	}
	if n := w.Advance(t0.Add(990 * time.Millisecond)); n != 0 {
		t.Fatalf("fired %d at the old deadline; want 0", n)
	}
	w.Schedule(&a, 20*time.Millisecond) // earlier again, from +990ms
	if n := w.Advance(t0.Add(time.Second)); n != 0 {
		t.Fatalf("fired %d at the second deadline; want 0", n)
	}
	if n := w.Advance(t0.Add(1010 * time.Millisecond)); n != 1 || fired != 1 {
		t.Fatalf("Advance = %d, callbacks %d; want 1, 1", n, fired)
	}
}

func TestCallbacks(t *testing.T) {
	const tick = 10 * time.Millisecond
	w := New(tick, 16, t0)

	// self re-arms itself every tick. killer, due before victim, stops
	// victim while both wait in the same batch, and arms late with a zero
	// delay from inside Advance.
	var self, killer, victim, late Timer
	selfFired, lateFired, victimFired := 0, 0, 0
	self.Fire = func() { selfFired++; w.Schedule(&self, tick) }
	victim.Fire = func() { victimFired++ }
	killer.Fire = func() {
		w.Stop(&victim)
		w.Schedule(&late, 0)
	}
	late.Fire = func() { lateFired++ }

	w.Schedule(&self, tick)
	w.Schedule(&killer, tick)
	w.Schedule(&victim, 2*tick)

	// One long jump: self fires once, not once per elapsed tick, and
	// re-arming itself inside Advance does not loop.
	if n := w.Advance(t0.Add(time.Second)); n != 2 || selfFired != 1 {
		t.Fatalf("Advance = %d, self fired %d; want 2 (self, killer), 1", n, selfFired)
	}
	if victimFired != 0 || victim.Armed() {
		t.Fatalf("victim fired %d, armed %v; want stopped by killer", victimFired, victim.Armed())
	}
	if lateFired != 0 || !late.Armed() || !self.Armed() || w.Len() != 2 {
		t.Fatalf("late fired %d, armed %v; self armed %v; Len %d; want 0, true, true, 2", lateFired, late.Armed(), self.Armed(), w.Len())
	}
	if n := w.Advance(t0.Add(time.Second + tick)); n != 2 || lateFired != 1 || selfFired != 2 {
		t.Fatalf("next tick: Advance = %d, late %d, self %d; want 2, 1, 2", n, lateFired, selfFired)
	}
}

// TestCallbackStopsTimerDueInSameBatch: a timer collected by Advance but
// stopped by an earlier callback of the same batch must not fire.
func TestCallbackStopsTimerDueInSameBatch(t *testing.T) {
	w := New(10*time.Millisecond, 16, t0)
	var timers [10]Timer
	fired := make([]int, len(timers))
	for i := range timers {
		timers[i].Fire = func() {
			fired[i]++
			for j := range timers { // stop every other timer still pending
				w.Stop(&timers[j])
			}
		}
		w.Schedule(&timers[i], 10*time.Millisecond)
	}
	if n := w.Advance(t0.Add(10 * time.Millisecond)); n != 1 {
		t.Fatalf("Advance = %d; want 1 (the first stops the rest)", n)
	}
	total := 0
	for _, f := range fired {
		total += f
	}
	if total != 1 || w.Len() != 0 {
		t.Fatalf("callbacks ran %d times, Len %d; want 1, 0", total, w.Len())
	}
}

// TestManyTimers checks every timer fires exactly once, in the first
// Advance whose clock has reached its due tick, under random clock steps
// that are sometimes longer than a revolution.
func TestManyTimers(t *testing.T) {
	const (
		tick   = 10 * time.Millisecond
		count  = 10_000
		slots  = 256 // revolution 2.56s, shorter than most delays
		maxDly = 10 * time.Minute
	)
	rng := rand.New(rand.NewPCG(1, 2))
	w := New(tick, slots, t0)
	timers := make([]Timer, count)
	due := make([]time.Duration, count)
	firedAt := make([]time.Duration, count)
	fires := make([]int, count)
	var now time.Time
	for i := range timers {
		due[i] = max(ceilTick(time.Duration(rng.Int64N(int64(maxDly))), tick), tick)
		timers[i].Fire = func() { fires[i]++; firedAt[i] = now.Sub(t0) }
		w.Schedule(&timers[i], due[i]-time.Duration(rng.Int64N(int64(tick)))) // any delay within the tick
	}
	if w.Len() != count {
		t.Fatalf("Len = %d; want %d", w.Len(), count)
	}

	now = t0
	prev := time.Duration(0)
	firedTotal := 0
	for i := 0; i < 100_000 && w.Len() > 0; i++ {
		now = now.Add(1 + time.Duration(rng.Int64N(int64(5*time.Second))))
		firedTotal += w.Advance(now)
		cur := now.Sub(t0)
		for j := range timers {
			if firedAt[j] == cur && fires[j] == 1 && (due[j] > cur || due[j] <= prev) {
				t.Fatalf("timer %d due +%v fired at +%v; previous Advance at +%v", j, due[j], cur, prev)
			}
		}
		prev = cur
	}
	if firedTotal != count || w.Len() != 0 {
		t.Fatalf("fired %d, Len %d; want %d, 0", firedTotal, w.Len(), count)
	}
	for i, f := range fires {
		if f != 1 {
			t.Fatalf("timer %d fired %d times", i, f)
		}
	}
}

func TestLongSleepAcrossRevolutions(t *testing.T) {
	const tick = 10 * time.Millisecond
	w := New(tick, 64, t0) // revolution 640ms; 1h is 5625 revolutions
	delays := []time.Duration{time.Hour, time.Hour + 5*time.Millisecond, 2*time.Hour + 59*time.Minute}
	timers := make([]Timer, len(delays))
	fired := make([]bool, len(delays))
	for i := range timers {
		timers[i].Fire = func() { fired[i] = true }
		w.Schedule(&timers[i], delays[i])
	}
	checks := []struct {
		at   time.Duration
		want []bool
	}{
		{59*time.Minute + 59*time.Second + 999*time.Millisecond, []bool{false, false, false}},
		{time.Hour, []bool{true, false, false}},
		{time.Hour + 9*time.Millisecond, []bool{true, false, false}},
		{time.Hour + 10*time.Millisecond, []bool{true, true, false}},
		{10 * time.Hour, []bool{true, true, true}},
	}
	for _, c := range checks {
		w.Advance(t0.Add(c.at))
		for i := range fired {
			if fired[i] != c.want[i] {
				t.Fatalf("at +%v: fired = %v; want %v", c.at, fired, c.want)
			}
		}
	}
}

func TestExtremeDelays(t *testing.T) {
	w := New(10*time.Millisecond, 16, t0)
	var huge, negative Timer
	w.Schedule(&huge, math.MaxInt64)
	w.Schedule(&negative, -time.Hour)
	if got := w.Next(t0); got != 10*time.Millisecond {
		t.Fatalf("Next = %v; want 10ms (negative delay fires next tick)", got)
	}
	if n := w.Advance(t0.Add(10 * time.Millisecond)); n != 1 || negative.Armed() {
		t.Fatalf("Advance = %d; want the negative-delay timer only", n)
	}
	if got := w.Next(t0); got < 100*365*24*time.Hour {
		t.Fatalf("Next for a MaxInt64 delay = %v; want saturated far future", got)
	}
	if n := w.Advance(t0.Add(200 * 365 * 24 * time.Hour)); n != 0 {
		t.Fatalf("Advance by 200 years fired %d; want 0", n)
	}
}

func TestClockGoingBackIsIgnored(t *testing.T) {
	w := New(10*time.Millisecond, 16, t0)
	var a Timer
	w.Advance(t0.Add(time.Second))
	w.Schedule(&a, 50*time.Millisecond)
	if n := w.Advance(t0); n != 0 {
		t.Fatalf("Advance to an earlier time fired %d", n)
	}
	if n := w.Advance(t0.Add(1050 * time.Millisecond)); n != 1 {
		t.Fatalf("Advance = %d; want 1 (delay measured from +1s)", n)
	}
}

func TestNewNormalises(t *testing.T) {
	tests := []struct {
		tick      time.Duration
		slots     int
		wantTick  time.Duration
		wantSlots int
	}{
		{0, 0, time.Millisecond, 1},
		{-time.Second, -3, time.Millisecond, 1},
		{time.Microsecond, 1, time.Millisecond, 1},
		{10 * time.Millisecond, 5, 10 * time.Millisecond, 8},
		{time.Second, 4096, time.Second, 4096},
		{time.Second, math.MaxInt, time.Second, maxSlots},
	}
	for _, tt := range tests {
		w := New(tt.tick, tt.slots, t0)
		if w.tick != tt.wantTick || len(w.slots) != tt.wantSlots {
			t.Errorf("New(%v, %d): tick %v, slots %d; want %v, %d", tt.tick, tt.slots, w.tick, len(w.slots), tt.wantTick, tt.wantSlots)
		}
	}
}
