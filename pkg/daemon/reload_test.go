package daemon

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// runWith runs a daemon for cfg with opts until the test ends; its runtime
// directory is the test's.
func runWith(t testing.TB, cfg *config.Config, opts Options) *Daemon {
	t.Helper()
	return runWithLogger(t, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), opts)
}

// runWithLogger is runWith logging to log.
func runWithLogger(t testing.TB, cfg *config.Config, log zerolog.Logger, opts Options) *Daemon {
	t.Helper()
	d, err := New(cfg, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Serving, not only started: SetBackends and reloads are refused
	// until Run has finished starting.
	testutil.WaitFor(t, 5*time.Second, "the daemon serving", func() bool { return d.srv.Started() && d.serving.Load() })
	return d
}

// configs hands a reload the next config.
type configs struct {
	mu   sync.Mutex
	next *config.Config
}

func (c *configs) set(cfg *config.Config) {
	c.mu.Lock()
	c.next = cfg
	c.mu.Unlock()
}

func (c *configs) load() (*config.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next, nil
}

// TestReloadKeepsRuntimeAndHealthState reloads a daemon whose checks have
// learnt something and whose backends an operator changed: the checks of
// an unchanged frontend run on untouched, those of a frontend with a new
// backend carry their state over, those of a frontend with new check
// settings restart; the drain and the runtime weight survive until the
// config changes that weight; the admin port moves.
func TestReloadKeepsRuntimeAndHealthState(t *testing.T) {
	up1, up2 := startDemo(t), startDemo(t)
	dead := testutil.RefusedAddr(t, "tcp")
	adminAddr, movedAddr := freeTCP(t), freeTCP(t)
	const interval = 30 * time.Millisecond
	runtimeDir := t.TempDir()
	build := func(admin string, bWeight int, bInterval time.Duration, extra bool) *config.Config {
		fb := config.New().RuntimeDir(runtimeDir).StateFile("").AdminListen(admin).
			Frontend("a").Listen("127.0.0.1:0").Backend(dead.String(), 1).Backend(up1.Addr().String(), 1)
		if extra {
			fb = fb.Backend(up2.Addr().String(), 1)
		}
		fb = fb.HealthInterval(interval).HealthTimeout(interval).HealthFall(2).HealthRise(50).
			Frontend("b").Listen("127.0.0.1:0").Backend(up2.Addr().String(), bWeight).HealthInterval(bInterval).
			Frontend("c").Listen("127.0.0.1:0").Backend(up1.Addr().String(), 1).HealthInterval(time.Hour)
		cfg, err := fb.Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var next configs
	d := runWith(t, build(adminAddr, 1, time.Hour, false), Options{Load: next.load})
	down := d.srv.Backends("a")[0]
	testutil.WaitFor(t, 5*time.Second, "the dead backend down", func() bool { return !down.Healthy() })
	src := &source{d: d}
	if err := src.SetState("a", up1.Addr().String(), "drain"); err != nil {
		t.Fatal(err)
	}
	if err := src.SetWeight("b", up2.Addr().String(), 7); err != nil {
		t.Fatal(err)
	}
	schedA, schedB, schedC := d.checks.scheduler("a"), d.checks.scheduler("b"), d.checks.scheduler("c")
	before, _ := schedA.State(down)

	// a gains a backend; b's checks change; c stays; the admin port moves.
	next.set(build(movedAddr, 1, 2*time.Hour, true))
	out := d.Reload(context.Background())
	if !out.OK {
		t.Fatalf("reload: %+v", out.Problems)
	}
	if got := out.Change.Backends["a"].Added; !slices.Equal(got, []string{up2.Addr().String()}) {
		t.Errorf("change %+v", out.Change)
	}
	bs := d.srv.Backends("a")
	if len(bs) != 3 || bs[0] != down || down.Healthy() || bs[1].State() != backend.Drain {
		t.Fatalf("frontend a after the reload: %v; the dead backend must stay down, the drained one drained", bs)
	}
	if d.checks.scheduler("c") != schedC {
		t.Error("the unchanged frontend's checks were restarted")
	}
	if s := d.checks.scheduler("a"); s == schedA {
		t.Error("frontend a's checks kept the old backend list")
	} else if st, _ := s.State(down); st.Up || st.LastCheck.Before(before.LastCheck) || st.Last.Msg == "" {
		t.Errorf("frontend a's new checks lost the state: %+v, before %+v", st, before)
	}
	if s := d.checks.scheduler("b"); s == schedB || d.srv.Backends("b")[0].Weight() != 7 {
		t.Errorf("frontend b: checks replaced %v, weight %d (want the runtime 7)", s != schedB, d.srv.Backends("b")[0].Weight())
	}
	// The admin port moved.
	if _, err := http.Get("http://" + movedAddr + "/healthz"); err != nil {
		t.Errorf("the moved admin port: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, "the old admin port closed", func() bool {
		c, err := net.DialTimeout("tcp", adminAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	// The config now changes b's weight: it wins over the runtime one.
	next.set(build(movedAddr, 3, 2*time.Hour, true))
	if out := d.Reload(context.Background()); !out.OK || d.srv.Backends("b")[0].Weight() != 3 {
		t.Errorf("reload: %+v; weight %d, want the config's 3", out, d.srv.Backends("b")[0].Weight())
	}
	if d.srv.Backends("a")[1].State() != backend.Drain {
		t.Error("the drain did not survive the second reload")
	}
}

// freeTCP returns a loopback address for the daemon to listen on, kept
// from every other socket until the test ends (testutil.ReserveTCP).
func freeTCP(t *testing.T) string {
	t.Helper()
	return testutil.ReserveTCP(t).String()
}

// TestWatchdogStopsWhileALoopStalls feeds the watchdog every 30 ms; a loop
// made to stall for a second stops the pings for that second, then they
// resume.
func TestWatchdogStopsWhileALoopStalls(t *testing.T) {
	sock := t.TempDir() + "/notify.sock"
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // after the daemon's STOPPING=1
	var mu sync.Mutex
	var pings []time.Time
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "WATCHDOG=1\n" {
				mu.Lock()
				pings = append(pings, time.Now())
				mu.Unlock()
			}
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(pings)
	}
	back := startDemo(t)
	cfg, err := config.New().Workers(2).RuntimeDir(t.TempDir()).AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	n := NewNotifier(sock)
	n.Watchdog = 30 * time.Millisecond
	d := runWith(t, cfg, Options{Notifier: n})
	testutil.WaitFor(t, 5*time.Second, "watchdog pings", func() bool { return count() >= 3 })

	const stall = time.Second
	if err := d.srv.Stall(1, stall); err != nil {
		t.Fatal(err)
	}
	stalled := time.Now()
	time.Sleep(stall)
	testutil.WaitFor(t, 5*time.Second, "pings after the stall", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return pings[len(pings)-1].After(stalled.Add(stall))
	})
	mu.Lock()
	defer mu.Unlock()
	// One probe may have been on its way when the stall began.
	var during int
	for _, p := range pings {
		if p.After(stalled.Add(2*n.Watchdog)) && p.Before(stalled.Add(stall-10*time.Millisecond)) {
			during++
		}
	}
	if during != 0 {
		t.Errorf("%d watchdog pings while loop 1 was stalled", during)
	}
}

// TestSetBackends changes a frontend's backends the way discovery will:
// specs merged by identity, a drained backend staying drained, the health
// checks following the new list, the other frontends untouched, and
// invalid specs refused with nothing changed.
func TestSetBackends(t *testing.T) {
	a, b, c := startDemo(t), startDemo(t), startDemo(t)
	cfg, err := config.New().RuntimeDir(t.TempDir()).AdminListen("").
		Frontend("db").Listen("127.0.0.1:0").Backend(a.Addr().String(), 1).Backend(b.Addr().String(), 1).
		HealthInterval(time.Hour).
		Frontend("other").Listen("127.0.0.1:0").Backend(c.Addr().String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{})
	kept := d.srv.Backends("db")[0]
	if err := kept.SetState(backend.Drain); err != nil {
		t.Fatal(err)
	}
	other := d.srv.Backends("other")[0]
	specs := []backend.Spec{{Address: a.Addr(), Weight: 4}, {Address: c.Addr(), Weight: 1}}
	change, err := d.SetBackends(context.Background(), "db", specs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(change.Added, []string{c.Addr().String()}) || !slices.Equal(change.Removed, []string{b.Addr().String()}) ||
		!slices.Equal(change.Updated, []string{a.Addr().String()}) {
		t.Errorf("change %+v", change)
	}
	bs := d.srv.Backends("db")
	if len(bs) != 2 || bs[0] != kept || kept.State() != backend.Drain || kept.Weight() != 4 || d.srv.Backends("other")[0] != other {
		t.Errorf("after SetBackends: %v (kept %v, state %v, weight %d)", bs, bs[0] == kept, kept.State(), kept.Weight())
	}
	if _, ok := d.checks.scheduler("db").State(bs[1]); !ok {
		t.Error("the health checks do not watch the new backend")
	}
	if fc := frontendConfig(d.config(), "db"); len(fc.Backends) != 2 || fc.Backends[0].Weight != 4 {
		t.Errorf("the config in force: %+v", fc.Backends)
	}
	bad := []backend.Spec{{Address: a.Addr(), Weight: 0}}
	if _, err := d.SetBackends(context.Background(), "db", bad); err == nil || len(d.srv.Backends("db")) != 2 {
		t.Errorf("invalid specs: %v", err)
	}
	if _, err := d.SetBackends(context.Background(), "nope", specs); err == nil {
		t.Error("an unknown frontend was accepted")
	}
}
