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
	"github.com/splicerlb/splicer/pkg/testutil"
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
// Scheduler against a reporter that reports a success every millisecond:
// every probe is skipped. Once the reports come with failures, or stop,
// probes run again.
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
	ticks := func() uint64 { st, _ := s.State(b); return st.Probes + st.Skipped }
	// mode 0: successes; 1: successes and failures; 2: nothing.
	var mode atomic.Int32
	s.ReportSuccess(b) // before the first probe time, which may come at once
	ctx, cancel := context.WithCancel(t.Context())
	reporter := make(chan struct{})
	go func() {
		defer close(reporter)
		for ctx.Err() == nil {
			switch mode.Load() {
			case 0:
				s.ReportSuccess(b)
			case 1:
				s.ReportFailure(b, "connect refused")
				s.ReportSuccess(b)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { cancel(); <-reporter }()
	start(t, s)

	testutil.WaitFor(t, 20*time.Second, "20 probe times", func() bool { return ticks() >= 20 })
	if n := probes.Load(); n != 0 {
		t.Errorf("%d probes ran while every window was proved, want 0", n)
	}
	for _, m := range []int32{1, 2} {
		mode.Store(m)
		before := probes.Load()
		from := ticks()
		testutil.WaitFor(t, 20*time.Second, "10 more probe times", func() bool { return ticks() >= from+10 })
		// The probe time right after the switch may still be a skip.
		if ran := probes.Load() - before; ran < 9 {
			t.Errorf("mode %d: %d probes in 10 probe times, want at least 9", m, ran)
		}
	}
	st, _ := s.State(b)
	if st.Probes != uint64(probes.Load()) {
		t.Errorf("State.Probes = %d, checker ran %d", st.Probes, probes.Load())
	}
}
