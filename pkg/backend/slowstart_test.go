package backend

import (
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

func TestRamp(t *testing.T) {
	const window = 20 * time.Second // one step per second
	const since = int64(1000 * time.Second)
	tests := []struct {
		name      string
		since     int64
		elapsed   time.Duration
		window    time.Duration
		full      uint32
		level     int64
		weight    uint32
		nextStep  time.Duration // after since; 0: none
		rampingOK bool
	}{
		{name: "just recovered", since: since, full: 256, window: window, level: 0, weight: 26, nextStep: time.Second, rampingOK: true},
		{name: "clock behind start", since: since, elapsed: -time.Second, full: 256, window: window, level: 0, weight: 26, nextStep: time.Second, rampingOK: true},
		{name: "one step", since: since, elapsed: 1500 * time.Millisecond, full: 256, window: window, level: 1, weight: 38, nextStep: 2 * time.Second, rampingOK: true},
		{name: "half way", since: since, elapsed: 10 * time.Second, full: 200, window: window, level: 10, weight: 110, nextStep: 11 * time.Second, rampingOK: true},
		{name: "last step", since: since, elapsed: window - 1, full: 256, window: window, level: 19, weight: 245, nextStep: window, rampingOK: true},
		{name: "done", since: since, elapsed: window, full: 256, window: window, level: rampSteps, weight: 256},
		{name: "weight 1 floors at 1", since: since, full: 1, window: window, level: 0, weight: 1, nextStep: time.Second, rampingOK: true},
		{name: "never recovered", since: 0, full: 256, window: window, level: rampSteps, weight: 256},
		{name: "slow start off", since: since, full: 256, window: 0, level: rampSteps, weight: 256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := since + int64(tc.elapsed)
			if got := rampLevel(tc.since, now, tc.window); got != tc.level {
				t.Errorf("rampLevel = %d, want %d", got, tc.level)
			}
			if got := rampWeight(tc.full, tc.since, now, tc.window); got != tc.weight {
				t.Errorf("rampWeight = %d, want %d", got, tc.weight)
			}
			next, ok := nextRampStep(tc.since, now, tc.window)
			if ok != tc.rampingOK || ok && next != tc.since+int64(tc.nextStep) {
				t.Errorf("nextRampStep = %d, %v; want since+%v, %v", next-tc.since, ok, tc.nextStep, tc.rampingOK)
			}
		})
	}
}

// TestSlowStartSnapshots follows a recovery on a fake clock: the snapshot's
// effective weight and EffectiveWeight climb with the ramp's steps.
func TestSlowStartSnapshots(t *testing.T) {
	const window = 100 * time.Second
	var clock fakeClock
	clock.advance(time.Hour)
	b0, b1 := mustNew(t, spec(0)), mustNew(t, spec(1))
	if err := b0.SetWeight(10); err != nil {
		t.Fatal(err)
	}
	if err := b1.SetWeight(10); err != nil {
		t.Fatal(err)
	}
	s, err := newSet([]*Backend{b0, b1}, nil, window, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if s.Load().Weight(0) != 250 {
		t.Fatalf("a backend that never failed starts at weight %d, want full 250", s.Load().Weight(0))
	}
	b0.SetHealthy(false)
	b0.SetHealthy(true)

	// Full weight on the snapshot's scale is 10*25 = 250.
	tests := []struct {
		at        time.Duration // since the recovery
		snapshot  uint32        // ceil(250 * (20 + 9*level) / 200)
		effective int           // ceil(10 * (20 + 9*level) / 200)
	}{
		{0, 25, 1},
		{5 * time.Second, 37, 2},
		{50 * time.Second, 138, 6},
		{99 * time.Second, 239, 10},
		{100 * time.Second, 250, 10},
	}
	start := clock.ns.Load()
	for _, tc := range tests {
		clock.ns.Store(start + int64(tc.at))
		s.rebuild() // what the ramp timer does at each step
		snap := s.Load()
		if snap.Weight(0) != tc.snapshot || snap.Weight(1) != 250 || b0.EffectiveWeight() != tc.effective {
			t.Errorf("at +%v: snapshot weights %d, %d, EffectiveWeight %d; want %d, 250, %d",
				tc.at, snap.Weight(0), snap.Weight(1), b0.EffectiveWeight(), tc.snapshot, tc.effective)
		}
		if m := snap.Tier()[0]; m.Weight != 250 || m.Effective != tc.snapshot {
			t.Errorf("at +%v: tier member %+v, want weight 250 effective %d", tc.at, m, tc.snapshot)
		}
	}
}

func TestSlowStartTriggers(t *testing.T) {
	tests := []struct {
		name    string
		outage  func(b *Backend) error
		recover func(b *Backend) error
	}{
		{
			name:    "health recovery",
			outage:  func(b *Backend) error { b.SetHealthy(false); return nil },
			recover: func(b *Backend) error { b.SetHealthy(true); return nil },
		},
		{
			name:    "leaving maint",
			outage:  func(b *Backend) error { return b.SetState(Maint) },
			recover: func(b *Backend) error { return b.SetState(Ready) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var clock fakeClock
			clock.advance(time.Hour)
			b0, b1 := mustNew(t, spec(0)), mustNew(t, spec(1))
			s, err := newSet([]*Backend{b0, b1}, nil, time.Minute, clock.now)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			if err := tc.outage(b0); err != nil {
				t.Fatal(err)
			}
			if err := tc.recover(b0); err != nil {
				t.Fatal(err)
			}
			if got := s.Load().Weight(0); got != 26 {
				t.Fatalf("snapshot weight after recovery %d, want 26 (a tenth of 256, rounded up)", got)
			}
		})
	}
	t.Run("drain does not ramp", func(t *testing.T) {
		b0 := mustNew(t, spec(0))
		s := mustSet(t, []*Backend{b0}, nil, time.Minute)
		if err := b0.SetState(Drain); err != nil {
			t.Fatal(err)
		}
		if err := b0.SetState(Ready); err != nil {
			t.Fatal(err)
		}
		if got := s.Load().Weight(0); got != 256 {
			t.Fatalf("snapshot weight after drain and ready %d, want full 256", got)
		}
	})
}

// TestSlowStartTimer checks that snapshots follow the ramp by themselves on
// the real clock, with nobody calling into the Set.
func TestSlowStartTimer(t *testing.T) {
	b0, b1 := mustNew(t, spec(0)), mustNew(t, spec(1))
	s := mustSet(t, []*Backend{b0, b1}, nil, 2*time.Second)
	b0.SetHealthy(false)
	b0.SetHealthy(true)
	if got := s.Load().Weight(0); got >= 256 {
		t.Fatalf("snapshot weight right after recovery %d, want below 256", got)
	}
	testutil.WaitFor(t, 10*time.Second, "the ramp to reach full weight", func() bool { return s.Load().Weight(0) == 256 })
}
