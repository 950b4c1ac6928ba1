package daemon

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splicerlb/splicer/health"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// webBackend is an HTTP/1.1 server that tells probes from clients by path
// and counts each exactly: GET /health is a probe, anything else a
// client's request. It keeps connections alive, and kill closes its
// listener and every connection, as the death of its process would.
type webBackend struct {
	addr string
	ln   net.Listener

	probes     atomic.Int64 // GET /health requests
	probeConns atomic.Int64 // connections whose first request was a probe
	served     atomic.Int64 // client requests

	mu    sync.Mutex
	conns map[net.Conn]bool
	dead  bool
	wg    sync.WaitGroup
}

func startWebBackend(t *testing.T) *webBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &webBackend{addr: ln.Addr().String(), ln: ln, conns: make(map[net.Conn]bool)}
	w.wg.Go(w.accept)
	t.Cleanup(w.kill)
	return w
}

func (w *webBackend) accept() {
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return
		}
		w.mu.Lock()
		if w.dead {
			w.mu.Unlock()
			c.Close()
			return
		}
		w.conns[c] = true
		w.mu.Unlock()
		w.wg.Go(func() { w.serve(c) })
	}
}

func (w *webBackend) serve(c net.Conn) {
	defer func() {
		w.mu.Lock()
		delete(w.conns, c)
		w.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(c)
	for first := true; ; first = false {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body := "data"
		if req.URL.Path == "/health" {
			w.probes.Add(1)
			if first {
				w.probeConns.Add(1)
			}
			body = "ok"
		} else {
			w.served.Add(1)
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body); err != nil || req.Close {
			return
		}
	}
}

// kill closes the listener and every connection, then waits for the
// handlers.
func (w *webBackend) kill() {
	w.mu.Lock()
	w.dead = true
	w.ln.Close()
	for c := range w.conns {
		c.Close()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// traffic sends one client request through front every period until
// stop, or until its bound of requests or time runs out.
type traffic struct {
	cancel context.CancelFunc
	done   chan struct{}
	sent   atomic.Int64
}

func startTraffic(t *testing.T, front string, period time.Duration) *traffic {
	t.Helper()
	const maxRequests, maxTime = 20000, 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), maxTime)
	tr := &traffic{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for tr.sent.Load() < maxRequests {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			tr.sent.Add(1)
			c, err := net.DialTimeout("tcp", front, time.Second)
			if err != nil {
				continue
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			io.WriteString(c, "GET /data HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	t.Cleanup(tr.stop)
	return tr
}

func (tr *traffic) stop() {
	tr.cancel()
	<-tr.done
}

// Probe timing of the tests below: probes of a dead backend are refused
// at once, so it is marked down within fall × interval + timeout of its
// death.
const (
	costInterval = 200 * time.Millisecond
	costTimeout  = 200 * time.Millisecond
	costFall     = 3
)

// probingDaemon runs a daemon whose frontend "t" balances over a and b
// with http checks, passive_fall 0 (so only probes take a backend down)
// and probe_when_idle_only as given.
func probingDaemon(t *testing.T, a, b *webBackend, idleOnly bool) *Daemon {
	t.Helper()
	cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").Strategy(config.StrategyRoundRobin).
		Backend(a.addr, 1).Backend(b.addr, 1).
		HealthCheck(config.CheckHTTP).HealthPath("/health").HealthInterval(costInterval).HealthTimeout(costTimeout).
		HealthFall(costFall).HealthRise(2).HealthPassiveFall(0).HealthProbeWhenIdleOnly(idleOnly).Build()
	if err != nil {
		t.Fatal(err)
	}
	return runDaemon(t, cfg)
}

// probeState is backend i of frontend "t"'s health state.
func probeState(d *Daemon, i int) health.State {
	b := d.srv.Backends("t")[i]
	st, _ := d.checks.scheduler("t").State(b)
	return st
}

// TestProbeWhenIdleOnlyCutsProbes measures, at the backend, the probes of
// 30 probe times under steady traffic through splicer (about 10 clients
// per proof window per backend), with and without probe_when_idle_only:
// with it, at least 80% fewer. Every probe of a backend also travels over
// one kept-alive connection.
func TestProbeWhenIdleOnlyCutsProbes(t *testing.T) {
	const ticks = 30
	ran := map[bool]int64{}
	for _, idleOnly := range []bool{false, true} {
		a, b := startWebBackend(t), startWebBackend(t)
		d := probingDaemon(t, a, b, idleOnly)
		tr := startTraffic(t, frontAddr(t, d), 5*time.Millisecond)
		testutil.WaitFor(t, 10*time.Second, "traffic to both backends", func() bool { return a.served.Load() > 0 && b.served.Load() > 0 })
		// Counted from a quiet moment: every probe sent has arrived.
		var from health.State
		var fromProbes int64
		testutil.WaitFor(t, 10*time.Second, "the backend to have seen every probe sent", func() bool {
			from, fromProbes = probeState(d, 0), a.probes.Load()
			return uint64(fromProbes) == from.Probes
		})
		testutil.WaitFor(t, 30*time.Second, "30 probe times", func() bool {
			st := probeState(d, 0)
			return st.Probes+st.Skipped >= from.Probes+from.Skipped+ticks
		})
		tr.stop()
		var to health.State
		var toProbes int64
		testutil.WaitFor(t, 10*time.Second, "the backend to have seen every probe sent", func() bool {
			to, toProbes = probeState(d, 0), a.probes.Load()
			return uint64(toProbes) == to.Probes
		})
		n := int64(to.Probes+to.Skipped) - int64(from.Probes+from.Skipped)
		ran[idleOnly] = toProbes - fromProbes
		t.Logf("probe_when_idle_only=%v: %d probe times, %d probes at the backend, %d skipped; %d probes on %d connection(s) in all; %d client requests",
			idleOnly, n, ran[idleOnly], int64(to.Skipped-from.Skipped), to.Probes, a.probeConns.Load(), tr.sent.Load())
		if !idleOnly && ran[idleOnly] != n {
			t.Errorf("without probe_when_idle_only %d probes in %d probe times, want one each", ran[idleOnly], n)
		}
		if idleOnly && ran[idleOnly]*5 > n {
			t.Errorf("with probe_when_idle_only %d probes in %d probe times under traffic, want at most 20%%", ran[idleOnly], n)
		}
		// All of them over one kept-alive connection (none when no
		// probe ran at all).
		if c := a.probeConns.Load(); c != int64(min(to.Probes, 1)) || to.Connections != uint64(c) {
			t.Errorf("%d probes opened %d connections (the scheduler counted %d), want 1 kept alive", to.Probes, c, to.Connections)
		}
		// The stats the admin API and the metrics serve say the same.
		testutil.WaitFor(t, 5*time.Second, "the stats to match the scheduler", func() bool {
			p := (&source{d: d}).Stats().Frontends[0].Backends[0].Health.Probes
			st := probeState(d, 0)
			return p != nil && *p == stats.ProbeStats{Skipped: st.Skipped, Connections: st.Connections}
		})
	}
}

// TestProbeWhenIdleOnlyDetection kills a backend and measures when it is
// marked down: with and without probe_when_idle_only, with clients
// flowing at the moment of death and without. Every case stays within
// fall × interval + timeout.
func TestProbeWhenIdleOnlyDetection(t *testing.T) {
	const bound = costFall*costInterval + costTimeout
	for _, tc := range []struct {
		name              string
		idleOnly, traffic bool
	}{
		{"every probe, idle", false, false},
		{"every probe, under traffic", false, true},
		{"idle only, idle", true, false},
		{"idle only, under traffic", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startWebBackend(t), startWebBackend(t)
			d := probingDaemon(t, a, b, tc.idleOnly)
			front := frontAddr(t, d)
			if tc.traffic {
				tr := startTraffic(t, front, 5*time.Millisecond)
				defer tr.stop()
				testutil.WaitFor(t, 10*time.Second, "traffic to the backend", func() bool { return a.served.Load() > 0 })
			}
			if tc.idleOnly && tc.traffic {
				// Die while probes are being skipped: the worst case.
				testutil.WaitFor(t, 10*time.Second, "3 probes skipped", func() bool { return probeState(d, 0).Skipped >= 3 })
			} else {
				testutil.WaitFor(t, 10*time.Second, "3 probes", func() bool { return probeState(d, 0).Probes >= 3 })
			}
			be := d.srv.Backends("t")[0]
			died := time.Now()
			a.kill()
			var detected time.Duration
			testutil.WaitFor(t, 10*time.Second, "the dead backend marked down", func() bool {
				detected = time.Since(died)
				return !be.Healthy()
			})
			st := probeState(d, 0)
			t.Logf("marked down %v after its death (bound %v); %d probes, %d skipped in all", detected, bound, st.Probes, st.Skipped)
			if detected > bound {
				t.Errorf("marked down %v after its death, want within fall × interval + timeout = %v", detected, bound)
			}
			if want := "http probe " + a.addr + ": GET /health: connection refused"; st.Last.Msg != want || st.Up {
				t.Errorf("State %+v, want down by %q", st, want)
			}
		})
	}
}

// TestProbeCostReload: probe_when_idle_only and http_keepalive reload like
// the other check settings: the frontend's checks restart on the new
// settings, each backend keeps its verdict and its probe counters.
func TestProbeCostReload(t *testing.T) {
	a := startWebBackend(t)
	dead := startWebBackend(t)
	dead.kill()
	runtimeDir := t.TempDir()
	build := func(idleOnly, keepalive bool) *config.Config {
		cfg, err := config.New().RuntimeDir(runtimeDir).StateFile("").AdminListen("").
			Frontend("t").Listen("127.0.0.1:0").Backend(a.addr, 1).Backend(dead.addr, 1).
			HealthCheck(config.CheckHTTP).HealthPath("/health").HealthInterval(50 * time.Millisecond).
			HealthTimeout(probeTimeout).HealthFall(1).HealthRise(100).
			HealthHTTPKeepalive(keepalive).HealthProbeWhenIdleOnly(idleOnly).Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var next configs
	d := runWith(t, build(false, true), Options{Load: next.load})
	down := d.srv.Backends("t")[1]
	testutil.WaitFor(t, 5*time.Second, "the dead backend down", func() bool { return !down.Healthy() })
	testutil.WaitFor(t, 5*time.Second, "5 probes", func() bool { return probeState(d, 0).Probes >= 5 })

	for _, step := range []struct {
		idleOnly, keepalive bool
	}{{true, true}, {true, false}, {false, true}} {
		old := d.checks.scheduler("t")
		before := probeState(d, 0)
		next.set(build(step.idleOnly, step.keepalive))
		if out := d.Reload(context.Background()); !out.OK {
			t.Fatalf("reload to probe_when_idle_only %v, http_keepalive %v: %+v", step.idleOnly, step.keepalive, out.Problems)
		}
		if d.checks.scheduler("t") == old {
			t.Fatal("the checks did not restart on new settings")
		}
		after := probeState(d, 0)
		if after.Probes < before.Probes || after.Connections < before.Connections {
			t.Errorf("counters went back: %+v, before %+v", after, before)
		}
		if st := probeState(d, 1); st.Up || down.Healthy() {
			t.Errorf("the down backend came up at the reload: %+v", st)
		}
		// With keep-alive off each probe opens a connection; with it on,
		// the new checks open one for all of theirs. Of the 6 probes
		// counted from here, the first may have connected before conns
		// was read (a backend's probes run one at a time, so only one).
		conns := a.probeConns.Load()
		testutil.WaitFor(t, 5*time.Second, "6 probes on the new settings", func() bool {
			return probeState(d, 0).Probes >= after.Probes+6
		})
		if opened := a.probeConns.Load() - conns; step.keepalive && opened > 1 || !step.keepalive && opened < 5 {
			t.Errorf("http_keepalive %v: %d probe connections for 6 probes", step.keepalive, opened)
		}
	}
	// The idle-only switch is wired to the data plane: a reload that
	// turns it on makes traffic count.
	next.set(build(true, true))
	if out := d.Reload(context.Background()); !out.OK {
		t.Fatal(out.Problems)
	}
	tr := startTraffic(t, frontAddr(t, d), 5*time.Millisecond)
	defer tr.stop()
	testutil.WaitFor(t, 10*time.Second, "probes skipped under traffic", func() bool { return probeState(d, 0).Skipped > 0 })

	// A frontend that sends no probe has no probe counters.
	next.set(func() *config.Config {
		cfg := build(false, true)
		cfg.Frontends[0].Health = config.Health{Check: config.CheckNone, PassiveFall: 3, Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}
		return cfg
	}())
	if out := d.Reload(context.Background()); !out.OK {
		t.Fatal(out.Problems)
	}
	if h := (&source{d: d}).Stats().Frontends[0].Backends[0].Health; !h.Checked || h.Probes != nil {
		t.Errorf("passive-only health %+v, want checked without probe counters", h)
	}
}
