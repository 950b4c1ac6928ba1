package health

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// recorder wraps a Checker and keeps every result per target, in order.
type recorder struct {
	Checker
	mu  sync.Mutex
	log map[netip.AddrPort][]Result
}

func newRecorder(c Checker) *recorder {
	return &recorder{Checker: c, log: make(map[netip.AddrPort][]Result)}
}

func (r *recorder) Check(ctx context.Context, target netip.AddrPort) Result {
	res := r.Checker.Check(ctx, target)
	r.mu.Lock()
	r.log[target] = append(r.log[target], res)
	r.mu.Unlock()
	return res
}

func (r *recorder) results(target netip.AddrPort) []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.log[target]...)
}

// checkerFunc adapts a function to Checker.
type checkerFunc func(ctx context.Context, target netip.AddrPort) Result

func (f checkerFunc) Check(ctx context.Context, target netip.AddrPort) Result { return f(ctx, target) }

// transition is one onChange call; probes is how many results the recorder
// held for the backend then, so the flip's probe is probes-1.
type transition struct {
	up     bool
	msg    string
	probes int
}

// transitions collects onChange calls.
type transitions struct {
	rec  *recorder
	mu   sync.Mutex
	list map[*backend.Backend][]transition
}

func newTransitions(rec *recorder) *transitions {
	return &transitions{rec: rec, list: make(map[*backend.Backend][]transition)}
}

func (ts *transitions) onChange(b *backend.Backend, up bool, r Result) int {
	if b.Healthy() != up {
		panic("onChange called before SetHealthy")
	}
	n := 0
	if ts.rec != nil {
		n = len(ts.rec.results(b.Address()))
	}
	ts.mu.Lock()
	ts.list[b] = append(ts.list[b], transition{up: up, msg: r.Msg, probes: n})
	ts.mu.Unlock()
	return 0
}

func (ts *transitions) of(b *backend.Backend) []transition {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]transition(nil), ts.list[b]...)
}

func newBackend(t *testing.T, addr netip.AddrPort) *backend.Backend {
	t.Helper()
	b, err := backend.New(backend.Spec{Address: addr, Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// start runs s until the test ends (or stop is called) and returns stop,
// which cancels Run and waits for it.
func start(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// fastHealth is a health section with short intervals for tests.
func fastHealth(interval time.Duration) config.Health {
	return config.Health{
		Interval: interval, Timeout: interval,
		FastInterval: interval, DownInterval: interval,
		Rise: 2, Fall: 3,
	}
}

// flapper serves send_expect "PING" -> "+OK" while healthy, and closes the
// conn without a reply while not; it flips every period until the test ends.
func flapper(t *testing.T, period time.Duration) netip.AddrPort {
	var healthy atomic.Bool
	healthy.Store(true)
	addr := serve(t, func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil || !healthy.Load() {
			return
		}
		_, _ = io.WriteString(c, "+OK")
		_, _ = io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				healthy.Store(!healthy.Load())
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return addr
}

// TestFlapTransitionsExact: a backend flapping every 300 ms, probed every
// 100 ms with rise 2 and fall 3, flips exactly at the 3rd consecutive
// failure and the 2nd consecutive success, never earlier, and each flip
// logs one line.
func TestFlapTransitionsExact(t *testing.T) {
	addr := flapper(t, 300*time.Millisecond)
	c, err := NewChecker(config.Health{Check: "send_expect", Send: "PING", Expect: "+OK"})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(c)
	ts := newTransitions(rec)
	var logs testutil.SyncBuffer
	b := newBackend(t, addr)
	s, err := New(fastHealth(100*time.Millisecond), rec, []*backend.Backend{b}, ts.onChange, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	testutil.WaitFor(t, 20*time.Second, "two down and two up transitions", func() bool { return len(ts.of(b)) >= 4 })
	stop()

	results := rec.results(addr)
	got := ts.of(b)
	// Replay the recorded results through the rules, independently of the
	// tracker: the flips must land on exactly these probes.
	var want []transition
	up, streak := true, 0
	for i, r := range results {
		if r.OK == up {
			streak = 0
			continue
		}
		streak++
		if (up && streak == 3) || (!up && streak == 2) {
			up, streak = !up, 0
			want = append(want, transition{up: up, msg: r.Msg, probes: i + 1})
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d transitions %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("transition %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	downMsg := "send_expect probe " + addr.String() + ": connection closed before a reply"
	if got[0].msg != downMsg {
		t.Errorf("down cause %q, want %q", got[0].msg, downMsg)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != len(got) {
		t.Fatalf("%d log lines for %d transitions:\n%s", len(lines), len(got), logs.String())
	}
	if !strings.Contains(lines[0], `"level":"warn"`) || !strings.Contains(lines[0], `"message":"backend down"`) ||
		!strings.Contains(lines[0], `"backend_address":"`+addr.String()+`"`) || !strings.Contains(lines[0], `"error":"`+downMsg+`"`) ||
		!strings.Contains(lines[0], `"backends_up":0,"backends":1,"connections_closed":0`) {
		t.Errorf("down log line %s", lines[0])
	}
	if !got[1].up || !strings.Contains(lines[1], `"level":"info"`) || !strings.Contains(lines[1], `"message":"backend up"`) ||
		!strings.Contains(lines[1], `"backends_up":1,`) || !strings.Contains(lines[1], `"check_seconds":`) {
		t.Errorf("up log line %s", lines[1])
	}
}

// TestDetectionTime: a backend that dies is marked down within
// fall*interval + timeout. The probes are real; the Scheduler's clock is a
// fake one the test moves from one probe time to the next, so the time is
// exact and nothing sleeps.
func TestDetectionTime(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		timeout  = 100 * time.Millisecond
		fall     = 3
	)
	// Connects complete in the kernel's backlog: no accept loop needed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := netip.MustParseAddrPort(ln.Addr().String())
	c, err := NewChecker(config.Health{Check: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, addr)
	clk := newFakeClock()
	down := make(chan time.Time, 1)
	h := fastHealth(interval)
	h.Timeout, h.Fall = timeout, fall
	s, err := New(h, c, []*backend.Backend{b}, func(_ *backend.Backend, up bool, _ Result) int {
		if !up {
			down <- clk.now()
		}
		return 0
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.setClock(clk)
	start(t, s)
	// probeNext moves the clock to the next probe time and waits until
	// that probe has been judged and the next one is scheduled.
	probeNext := func() {
		t.Helper()
		clk.waitArmed(t, 1)
		d, _ := clk.next()
		clk.advance(d)
		clk.waitArmed(t, 1)
	}
	probeNext()
	if st, _ := s.State(b); !st.Last.OK {
		t.Fatalf("first probe: %+v, want a success", st.Last)
	}
	died := clk.now()
	ln.Close()
	for probes := 0; len(down) == 0; probes++ {
		if probes == 2*fall {
			t.Fatalf("not marked down after %d probes", probes)
		}
		probeNext()
	}
	elapsed := (<-down).Sub(died)
	t.Logf("detected in %v (bound %v)", elapsed, fall*interval+timeout)
	if elapsed > fall*interval+timeout {
		t.Fatalf("detected in %v, want at most %v", elapsed, fall*interval+timeout)
	}
	if b.Healthy() {
		t.Fatal("backend still healthy after the down transition")
	}
	st, _ := s.State(b)
	want := "tcp probe " + addr.String() + ": connect: connection refused"
	if st.Up || st.Failures < fall || st.Last.Msg != want || st.LastChange.IsZero() {
		t.Fatalf("State = %+v, want down, >= %d failures, last %q, a LastChange", st, fall, want)
	}
}

// TestMaintSkipped: a backend in Maint gets no probe and keeps its verdict.
func TestMaintSkipped(t *testing.T) {
	var ready, maint atomic.Int32
	readyB := newBackend(t, netip.MustParseAddrPort("127.0.0.1:1"))
	maintB := newBackend(t, netip.MustParseAddrPort("127.0.0.1:2"))
	if err := maintB.SetState(backend.Maint); err != nil {
		t.Fatal(err)
	}
	c := checkerFunc(func(_ context.Context, target netip.AddrPort) Result {
		if target == maintB.Address() {
			maint.Add(1)
		} else {
			ready.Add(1)
		}
		return Result{Msg: "failing"}
	})
	h := fastHealth(10 * time.Millisecond)
	h.Fall = 1
	s, err := New(h, c, []*backend.Backend{readyB, maintB}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	testutil.WaitFor(t, 20*time.Second, "ten probes of the ready backend", func() bool { return ready.Load() >= 10 })
	stop()
	if n := maint.Load(); n != 0 {
		t.Fatalf("maint backend probed %d times", n)
	}
	if !maintB.Healthy() || readyB.Healthy() {
		t.Fatalf("healthy: maint %v (want true), ready %v (want false)", maintB.Healthy(), readyB.Healthy())
	}
	if st, _ := s.State(maintB); st != (State{Up: true}) {
		t.Fatalf("maint State = %+v, want untouched", st)
	}
}

// TestInitialVerdictCarriesOver: a backend already down (kept across a
// reload) starts down and needs rise successes.
func TestInitialVerdictCarriesOver(t *testing.T) {
	b := newBackend(t, netip.MustParseAddrPort("127.0.0.1:1"))
	b.SetHealthy(false)
	rec := newRecorder(checkerFunc(func(context.Context, netip.AddrPort) Result { return Result{OK: true, Msg: "fine"} }))
	ts := newTransitions(rec)
	s, err := New(fastHealth(10*time.Millisecond), rec, []*backend.Backend{b}, ts.onChange, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.State(b); st.Up {
		t.Fatal("State starts up for a down backend")
	}
	start(t, s)
	testutil.WaitFor(t, 20*time.Second, "the up transition", func() bool { return len(ts.of(b)) == 1 })
	if got, want := ts.of(b)[0], (transition{up: true, msg: "fine", probes: 2}); got != want {
		t.Fatalf("transition %+v, want %+v", got, want)
	}
}

// TestPassive: passive_fall consecutive reported failures take a backend
// down at once although its probe passes; a success in between resets the
// streak; active probes then bring it back with rise.
func TestPassive(t *testing.T) {
	var probesOK atomic.Bool
	rec := newRecorder(checkerFunc(func(context.Context, netip.AddrPort) Result {
		return Result{OK: probesOK.Load(), Msg: "probe"}
	}))
	ts := newTransitions(rec)
	b := newBackend(t, netip.MustParseAddrPort("127.0.0.1:1"))
	h := fastHealth(10 * time.Millisecond)
	h.PassiveFall = 3
	// Probes fail until the passive streak is in, but fall is out of reach:
	// only the passive path can take the backend down.
	h.Fall = 100
	s, err := New(h, rec, []*backend.Backend{b}, ts.onChange, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	s.ReportFailure(b, "connect: connection reset by peer")
	s.ReportFailure(b, "connect: connection reset by peer")
	if st, _ := s.State(b); st.PassiveFailures != 2 {
		t.Fatalf("PassiveFailures = %d, want 2", st.PassiveFailures)
	}
	s.ReportSuccess(b)
	if st, _ := s.State(b); st.PassiveFailures != 0 {
		t.Fatalf("PassiveFailures after a success = %d, want 0", st.PassiveFailures)
	}
	for range 2 {
		s.ReportFailure(b, "connect: connection reset by peer")
	}
	if !b.Healthy() {
		t.Fatal("down after 2 passive failures with passive_fall 3")
	}
	s.ReportFailure(b, "read: connection reset by peer")
	testutil.WaitFor(t, 20*time.Second, "the passive down transition", func() bool { return len(ts.of(b)) == 1 })
	if got := ts.of(b)[0]; got.up || got.msg != "passive: read: connection reset by peer" {
		t.Fatalf("transition %+v, want down with the passive cause", got)
	}
	probesOK.Store(true)
	testutil.WaitFor(t, 20*time.Second, "the up transition", func() bool { return len(ts.of(b)) == 2 })
	got := ts.of(b)[1]
	// Every probe failed until probesOK: the flip must come on exactly the
	// rise-th success.
	results := rec.results(b.Address())[:got.probes]
	oks := 0
	for _, r := range results {
		if r.OK {
			oks++
		}
	}
	if !got.up || oks != h.Rise || !results[len(results)-1].OK {
		t.Fatalf("up transition %+v after results %+v", got, results)
	}
}

// TestPassiveDisabled: without passive_fall, reports change nothing.
func TestPassiveDisabled(t *testing.T) {
	b := newBackend(t, netip.MustParseAddrPort("127.0.0.1:1"))
	s, err := New(fastHealth(time.Hour), checkerFunc(func(context.Context, netip.AddrPort) Result { return Result{} }),
		[]*backend.Backend{b}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	other := newBackend(t, netip.MustParseAddrPort("127.0.0.1:2"))
	for range 10 {
		s.ReportFailure(b, "x")
		s.ReportFailure(other, "x")
	}
	if st, _ := s.State(b); st.PassiveFailures != 0 {
		t.Fatalf("PassiveFailures = %d with passive_fall 0", st.PassiveFailures)
	}
	if _, ok := s.State(other); ok {
		t.Fatal("State of an unknown backend reported ok")
	}
}

// TestNoGoroutineLeft: cancelling Run while probes hang on silent servers
// returns promptly and leaves no goroutine behind.
func TestNoGoroutineLeft(t *testing.T) {
	silent := serve(t, hang)
	baseline := runtime.NumGoroutine()
	kinds := []config.Health{
		{Check: "tcp"},
		{Check: "send_expect", Send: "x", Expect: "y"},
		{Check: "postgres", User: "u"},
		{Check: "redis"},
		{Check: "http", Path: "/", Status: 200},
	}
	var probing atomic.Int32
	for _, k := range kinds {
		c, err := NewChecker(k)
		if err != nil {
			t.Fatal(err)
		}
		counted := checkerFunc(func(ctx context.Context, target netip.AddrPort) Result {
			probing.Add(1)
			return c.Check(ctx, target)
		})
		h := fastHealth(5 * time.Millisecond)
		h.Timeout = time.Minute // probes hang until Run is cancelled
		bs := []*backend.Backend{newBackend(t, silent), newBackend(t, testutil.RefusedAddr(t, "tcp"))}
		s, err := New(h, counted, bs, nil, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, s)
		testutil.WaitFor(t, 20*time.Second, k.Check+" probes in flight", func() bool { return probing.Load() >= 2 })
		stop()
		probing.Store(0)
	}
	testutil.WaitFor(t, 20*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestNewRejects(t *testing.T) {
	b := newBackend(t, netip.MustParseAddrPort("127.0.0.1:1"))
	ok := checkerFunc(func(context.Context, netip.AddrPort) Result { return Result{OK: true} })
	good := fastHealth(time.Second)
	with := func(f func(*config.Health)) config.Health {
		h := good
		f(&h)
		return h
	}
	cases := []struct {
		name     string
		h        config.Health
		c        Checker
		backends []*backend.Backend
		want     string
	}{
		{"no checker", good, nil, nil, "no checker: invalid health check"},
		{"zero interval", with(func(h *config.Health) { h.Interval = 0 }), ok, nil,
			"health intervals and timeout must be positive: invalid health check"},
		{"negative fast interval", with(func(h *config.Health) { h.FastInterval = -1 }), ok, nil,
			"health intervals and timeout must be positive: invalid health check"},
		{"zero rise", with(func(h *config.Health) { h.Rise = 0 }), ok, nil,
			"health rise 0, fall 3, passive_fall 0: rise and fall must be at least 1: invalid health check"},
		{"nil backend", good, ok, []*backend.Backend{nil}, "nil backend: invalid health check"},
		{"duplicate", good, ok, []*backend.Backend{b, b}, `backend "127.0.0.1:1" listed twice: invalid health check`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.h, tc.c, tc.backends, nil, zerolog.Nop())
			if s != nil || err == nil || err.Error() != tc.want || !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, %v; want error %q wrapping ErrConfig", s, err, tc.want)
			}
		})
	}
}

func TestRunOnce(t *testing.T) {
	s, err := New(fastHealth(time.Hour), checkerFunc(func(context.Context, netip.AddrPort) Result { return Result{} }),
		nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("first Run = %v", err)
	}
	if err := s.Run(ctx); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Run = %v, want ErrStarted", err)
	}
}

// A passive-only Scheduler (check "none") sends no probe: passive_fall
// consecutive failures take a backend down, a success in between resets
// the streak, and down_interval later the backend is back on trial.
func TestNewPassive(t *testing.T) {
	h := fastHealth(time.Hour)
	h.PassiveFall = 2
	h.DownInterval = 300 * time.Millisecond
	b := newBackend(t, testutil.RefusedAddr(t, "tcp"))
	other := newBackend(t, testutil.RefusedAddr(t, "tcp"))
	s, flips, clk := passiveScheduler(t, h, b, other)

	s.ReportFailure(b, "connect refused")
	s.ReportSuccess(b) // ends the streak
	s.ReportFailure(b, "connect refused")
	st, _ := s.State(b)
	if !b.Healthy() || st.PassiveFailures != 1 {
		t.Fatalf("after fail, success, fail: healthy %v, passive failures %d; want up with 1", b.Healthy(), st.PassiveFailures)
	}
	s.ReportFailure(b, "connect refused")
	down := nextFlip(t, flips)
	if down.up || down.msg != "passive: connect refused" || b.Healthy() {
		t.Fatalf("flip %+v, healthy %v; want down by passive", down, b.Healthy())
	}
	// The trial comes down_interval after the fall, not a moment sooner.
	clk.waitArmed(t, 1)
	clk.advance(h.DownInterval - time.Millisecond)
	if clk.armed() != 1 || len(flips) != 0 {
		t.Fatalf("%v after the fall: %d flips, trial timer armed %v; want none, armed",
			h.DownInterval-time.Millisecond, len(flips), clk.armed() == 1)
	}
	clk.advance(time.Millisecond)
	up := nextFlip(t, flips)
	if !up.up || up.msg != "passive: back on trial after down_interval" || !b.Healthy() {
		t.Fatalf("flip %+v, healthy %v; want up on trial", up, b.Healthy())
	}
	if wait := up.at.Sub(down.at); wait < h.DownInterval {
		t.Errorf("back on trial after %v, want at least down_interval %v", wait, h.DownInterval)
	}
	if _, err := NewPassive(config.Health{Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1},
		[]*backend.Backend{b}, nil, zerolog.Nop()); !errors.Is(err, ErrConfig) {
		t.Errorf("NewPassive without passive_fall: %v, want ErrConfig", err)
	}
}

// Without probes, the last backend up is never taken down, and failures
// further apart than down_interval do not add up to a streak.
func TestNewPassiveGuards(t *testing.T) {
	h := fastHealth(time.Hour)
	h.PassiveFall = 2
	h.DownInterval = 200 * time.Millisecond
	only := newBackend(t, testutil.RefusedAddr(t, "tcp"))
	s, flips, _ := passiveScheduler(t, h, only)
	for round := 0; round < 3; round++ {
		s.ReportFailure(only, "connect refused")
		s.ReportFailure(only, "connect refused")
		testutil.WaitFor(t, 10*time.Second, "the full streak let go", func() bool {
			st, _ := s.State(only)
			return st.PassiveFailures == 0
		})
		if !only.Healthy() || len(flips) != 0 {
			t.Fatalf("the only backend after streak %d: healthy %v, %d flips; want up, none", round+1, only.Healthy(), len(flips))
		}
	}

	b := newBackend(t, testutil.RefusedAddr(t, "tcp"))
	other := newBackend(t, testutil.RefusedAddr(t, "tcp"))
	s, flips, clk := passiveScheduler(t, h, b, other)
	s.ReportFailure(b, "connect refused")
	// The next failure comes more than down_interval after this one.
	clk.advance(h.DownInterval + 50*time.Millisecond)
	s.ReportFailure(b, "connect refused")
	st, _ := s.State(b)
	if !b.Healthy() || st.PassiveFailures != 1 || len(flips) != 0 {
		t.Fatalf("two failures %v apart: healthy %v, streak %d; want up, 1", h.DownInterval+50*time.Millisecond, b.Healthy(), st.PassiveFailures)
	}
}

type passiveFlip struct {
	up  bool
	msg string
	at  time.Time
}

// passiveScheduler starts a NewPassive Scheduler over bs on a fake clock
// until the test ends; its flips arrive on the channel, stamped with the
// clock's time.
func passiveScheduler(t *testing.T, h config.Health, bs ...*backend.Backend) (*Scheduler, chan passiveFlip, *fakeClock) {
	t.Helper()
	flips := make(chan passiveFlip, 8)
	clk := newFakeClock()
	s, err := NewPassive(h, bs, func(_ *backend.Backend, up bool, r Result) int {
		flips <- passiveFlip{up, r.Msg, clk.now()}
		return 0
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.setClock(clk)
	t.Cleanup(start(t, s))
	return s, flips, clk
}

// nextFlip waits up to 10 s for the next flip.
func nextFlip(t *testing.T, flips chan passiveFlip) passiveFlip {
	t.Helper()
	select {
	case f := <-flips:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no flip within 10s")
	}
	return passiveFlip{}
}

// Probes start on a grid of a twentieth of the interval (50 ms for 1 s),
// so that those due together share one wake-up, and a backend probed
// every interval stays exactly interval apart; the first probe still
// comes within the first interval.
func TestProbesOnGrid(t *testing.T) {
	const (
		interval = time.Second
		grain    = interval / 20
		n        = 8
	)
	clk := newFakeClock()
	begin := clk.now()
	var mu sync.Mutex
	times := make(map[netip.AddrPort][]time.Time)
	c := checkerFunc(func(_ context.Context, target netip.AddrPort) Result {
		mu.Lock()
		times[target] = append(times[target], clk.now())
		mu.Unlock()
		return Result{OK: true, Msg: "up"}
	})
	var backends []*backend.Backend
	for i := range n {
		backends = append(backends, newBackend(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(i+1))))
	}
	s, err := New(fastHealth(interval), c, backends, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.setClock(clk)
	start(t, s)
	clk.waitArmed(t, n)
	for clk.now().Sub(begin) < 3*interval {
		d, _ := clk.next()
		clk.advance(d)
		clk.waitArmed(t, n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, b := range backends {
		got := times[b.Address()]
		if len(got) < 3 {
			t.Fatalf("%s: probed at %v, want 3 probes in 3 intervals", b.Address(), got)
		}
		if first := got[0].Sub(begin); first >= interval {
			t.Errorf("%s: first probe after %v, want it within the interval", b.Address(), first)
		}
		for i, at := range got {
			if at.UnixNano()%int64(grain) != 0 {
				t.Errorf("%s: probe %d at %v, off the %v grid", b.Address(), i, at, grain)
			}
			if i > 0 && at.Sub(got[i-1]) != interval {
				t.Errorf("%s: probes %d and %d %v apart, want %v", b.Address(), i-1, i, at.Sub(got[i-1]), interval)
			}
		}
	}
}
