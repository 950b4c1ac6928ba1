package health

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// TestTrafficProves walks the traffic record of one backend through
// sequences of reports and probe times, on an explicit clock.
func TestTrafficProves(t *testing.T) {
	const age, grain = 100, 10
	type step struct {
		at   int64
		op   string // "served", "failed" or "probe"
		want bool   // for "probe": proves
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"no traffic", []step{{50, "probe", false}, {150, "probe", false}}},
		{"served", []step{{40, "served", false}, {50, "probe", true}}},
		{"served too long ago", []step{{40, "served", false}, {141, "probe", false}}},
		{"served at the edge", []step{{40, "served", false}, {140, "probe", true}}},
		{"a failure spoils the window", []step{{40, "served", false}, {45, "failed", false}, {46, "served", false}, {50, "probe", false}}},
		{"a failure only spoils its window", []step{
			{40, "failed", false}, {50, "probe", false}, {60, "served", false}, {70, "probe", true},
		}},
		{"a failure right after a probe counts for the next", []step{
			{40, "served", false}, {50, "probe", true}, {50, "failed", false}, {55, "served", false}, {60, "probe", false},
		}},
		{"successes within a grain keep the first time", []step{
			{40, "served", false}, {49, "served", false}, {140, "probe", true}, {141, "probe", false},
		}},
		{"a success a grain later moves it", []step{{40, "served", false}, {50, "served", false}, {150, "probe", true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr traffic
			tr.lastServed.Store(neverServed)
			for i, s := range tc.steps {
				switch s.op {
				case "served":
					tr.served(s.at, grain)
				case "failed":
					tr.failed()
				case "probe":
					if got := tr.proves(s.at, age); got != s.want {
						t.Fatalf("step %d (probe at %d): proves = %v, want %v", i, s.at, got, s.want)
					}
				}
			}
		})
	}
}

// TestProvedByTraffic: only an up backend with no streak against it, on a
// probe_when_idle_only Scheduler, may skip its probe.
func TestProvedByTraffic(t *testing.T) {
	b := newBackend(t, netip.MustParseAddrPort("127.0.0.1:1"))
	for _, tc := range []struct {
		name     string
		idleOnly bool
		up       bool
		failures int // current streak of failed probes
		want     bool
	}{
		{"proved", true, true, 0, true},
		{"option off", false, true, 0, false},
		{"down", true, false, 0, false},
		{"failing", true, true, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := fastHealth(time.Hour)
			h.ProbeWhenIdleOnly = tc.idleOnly
			s, err := New(h, noProbe{}, []*backend.Backend{b}, nil, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			tg := s.view.Load().by[b]
			tg.tr.up, tg.tr.failures = tc.up, tc.failures
			s.ReportSuccess(b)
			if got := s.provedByTraffic(tg); got != tc.want {
				t.Errorf("provedByTraffic = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestIdleOnlyRejects: a Scheduler refuses probe_when_idle_only where it
// would skip what traffic cannot prove, or where nothing is probed.
func TestIdleOnlyRejects(t *testing.T) {
	h := fastHealth(time.Second)
	h.ProbeWhenIdleOnly, h.Role = true, config.RolePrimary
	if _, err := New(h, noProbe{}, nil, nil, zerolog.Nop()); err == nil {
		t.Error("New accepted probe_when_idle_only with a role")
	}
	h.Role, h.PassiveFall = "", 3
	if _, err := NewPassive(h, nil, nil, zerolog.Nop()); err == nil {
		t.Error("NewPassive accepted probe_when_idle_only")
	}
}

// TestSchedulerSkipsWhileTrafficProves runs a probe_when_idle_only
// Scheduler on a clock the test moves, and reports what the data plane saw
// just before each probe time: while every window has a success and no
// failure, every probe is skipped; once the reports come with failures, or
// stop, every probe runs. The reports are made in step with the probe
// times (not by a goroutine reporting every millisecond, which a loaded
// machine may not run for longer than a proof window), so the counts are
// exact.
func TestSchedulerSkipsWhileTrafficProves(t *testing.T) {
	const interval = 100 * time.Millisecond
	var probes atomic.Int32
	c := checkerFunc(func(context.Context, netip.AddrPort) Result {
		probes.Add(1)
		return Result{OK: true, Msg: "ok"}
	})
	b := newBackend(t, netip.MustParseAddrPort("127.0.0.1:1"))
	h := fastHealth(interval)
	h.ProbeWhenIdleOnly = true
	s, err := New(h, c, []*backend.Backend{b}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	s.setClock(clk)
	ticks := func() uint64 { st, _ := s.State(b); return st.Probes + st.Skipped }
	// A report comes this long before the probe time: well within the
	// proof age (half the interval), and more than its grain after the
	// previous report.
	const lead = 10 * time.Millisecond
	if age := s.proofAge(); lead >= age || interval-lead < age {
		t.Fatalf("lead %v does not fit the proof age %v", lead, age)
	}
	// mode 0: successes; 1: successes and failures; 2: nothing.
	report := map[int]func(){
		0: func() { s.ReportSuccess(b) },
		1: func() { s.ReportFailure(b, "connect refused"); s.ReportSuccess(b) },
		2: func() {},
	}
	// probeTime moves the clock to lead before the next probe time,
	// reports as mode says, moves it to the probe time and waits until
	// that probe time has been handled and the next one is scheduled.
	probeTime := func(mode int) {
		t.Helper()
		clk.waitArmed(t, 1)
		from := ticks()
		d, _ := clk.next()
		if d > lead {
			clk.advance(d - lead)
			d = lead
		}
		report[mode]()
		clk.advance(d)
		clk.waitArmed(t, 1)
		if got := ticks(); got != from+1 {
			t.Fatalf("mode %d: %d probe times handled, want 1", mode, got-from)
		}
	}
	s.ReportSuccess(b) // the first probe time comes within an interval, maybe at once
	start(t, s)

	for i := 0; i < 20; i++ {
		probeTime(0)
	}
	if n := probes.Load(); n != 0 {
		t.Errorf("%d probes ran while every window was proved, want 0", n)
	}
	for _, m := range []int{1, 2} {
		before := probes.Load()
		for i := 0; i < 10; i++ {
			probeTime(m)
		}
		if ran := probes.Load() - before; ran != 10 {
			t.Errorf("mode %d: %d probes in 10 probe times, want 10", m, ran)
		}
	}
	st, _ := s.State(b)
	if st.Probes != uint64(probes.Load()) {
		t.Errorf("State.Probes = %d, checker ran %d", st.Probes, probes.Load())
	}
}
