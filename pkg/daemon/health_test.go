package daemon

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/demo"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// frontAddr waits until the daemon's frontend "t" is bound and returns its
// address. Tests listen on port 0: a port picked in advance could be taken
// by another test's client before the daemon binds it.
func frontAddr(t *testing.T, d *Daemon) string {
	t.Helper()
	var addr string
	testutil.WaitFor(t, 5*time.Second, "frontend bound", func() bool {
		if a := d.srv.Addrs("t"); len(a) > 0 {
			addr = a[0].String()
		}
		return addr != ""
	})
	return addr
}

func startDemo(t *testing.T) *demo.Server {
	t.Helper()
	s, err := demo.Start(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// probeTimeout is the health check timeout of tests whose probes of a live
// backend must not fail: a probe on loopback answers in microseconds, but
// under make test (race detector, every package at once on 2 cores) its
// goroutine can wait tens of milliseconds for the CPU, and a timeout as
// short as the tests' intervals (50 ms) then took a live backend down. A
// dead backend's probes are refused at once, whatever the timeout.
const probeTimeout = 2 * time.Second

// runDaemon runs a daemon for cfg until the test ends, and returns once it
// serves: Run serves the admin API before it binds the frontends and
// starts the health checks, so a test that began at once could read the
// stats, the checks or the listeners before they are there.
func runDaemon(t *testing.T, cfg *config.Config) *Daemon {
	t.Helper()
	return runWith(t, cfg, Options{})
}

// greeting connects to front and returns the demo backend's greeting line,
// or "" when the connection is refused or cut before one arrives.
func greeting(t *testing.T, front string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", front, 5*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// TestDownBackendGetsNoConnections stops one of two backends: once the
// active check marks it down, every new client goes to the other.
func TestDownBackendGetsNoConnections(t *testing.T) {
	a, b := startDemo(t), startDemo(t)
	cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").
		Backend(a.Addr().String(), 1).Backend(b.Addr().String(), 1).
		HealthCheck("tcp").HealthInterval(50 * time.Millisecond).HealthTimeout(probeTimeout).
		HealthRise(1).HealthFall(2).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := frontAddr(t, d)

	a.Close()
	down := d.srv.Backends("t")[0]
	testutil.WaitFor(t, 10*time.Second, "backend a marked down", func() bool { return !down.Healthy() })
	want := "hello from demo backend " + b.Addr().String() + "\n"
	for i := 0; i < 20; i++ {
		if got := greeting(t, front); got != want {
			t.Fatalf("client %d after a went down: %q, want %q", i, got, want)
		}
	}
}

// resettingBackend accepts and resets every connection on its service
// port, while a side port answers health probes.
func resettingBackend(t *testing.T) (service, side string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sideLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); sideLn.Close() })
	count := make(chan int, 1)
	count <- 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := <-count
			count <- n + 1
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := sideLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	accepted = func() int { n := <-count; count <- n; return n }
	return ln.Addr().String(), sideLn.Addr().String(), accepted
}

// TestPassiveFallTakesResettingBackendOut checks passive detection: the
// probe port answers, the service port resets every connection, and after
// passive_fall resets the backend is out.
func TestPassiveFallTakesResettingBackendOut(t *testing.T) {
	service, side, accepted := resettingBackend(t)
	good := startDemo(t)
	port := int(netip.MustParseAddrPort(side).Port())
	// A day-long interval keeps active probes (which would succeed on the
	// side port and reset the passive streak) out of the test.
	cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").Retries(0).
		Backend(service, 1).Backend(good.Addr().String(), 1).
		HealthCheck("tcp").HealthPort(port).HealthInterval(24 * time.Hour).HealthPassiveFall(3).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := frontAddr(t, d)
	bad := d.srv.Backends("t")[0]
	sched := d.checks.scheduler("t")
	for i := 0; i < 20 && bad.Healthy(); i++ {
		greeting(t, front)
		// Passive reports are applied by the backend's probe goroutine,
		// a moment after the data plane sees the reset: let each one land
		// before the next client, so the count at the flip is exact.
		testutil.WaitFor(t, 10*time.Second, "the reset reported", func() bool {
			st, _ := sched.State(bad)
			return !bad.Healthy() || (st.PassiveFailures == accepted() && accepted() < 3)
		})
	}
	testutil.WaitFor(t, 10*time.Second, "resetting backend marked down", func() bool { return !bad.Healthy() })
	if n := accepted(); n != 3 {
		t.Errorf("backend taken out after %d resets, want passive_fall = 3", n)
	}
	want := "hello from demo backend " + good.Addr().String() + "\n"
	for i := 0; i < 10; i++ {
		if got := greeting(t, front); got != want {
			t.Fatalf("client %d after the bad backend went down: %q", i, got)
		}
	}
	if n := accepted(); n != 3 {
		t.Errorf("the down backend got %d connections, want still 3", n)
	}
}

// TestOnDownClose marks a backend down through its probe port while a
// client holds a connection to it: on_down = "close" cuts the connection
// within one interval; the default keeps it.
func TestOnDownClose(t *testing.T) {
	for _, tc := range []struct {
		onDown  string
		cutWant bool
	}{{config.OnDownClose, true}, {config.OnDownKeep, false}} {
		t.Run(tc.onDown, func(t *testing.T) {
			svc := startDemo(t)
			sideLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					c, err := sideLn.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			port := sideLn.Addr().(*net.TCPAddr).Port
			const interval = 50 * time.Millisecond
			cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").OnDown(tc.onDown).
				Backend(svc.Addr().String(), 1).
				HealthCheck("tcp").HealthPort(port).HealthInterval(interval).HealthTimeout(probeTimeout).
				HealthFall(1).Build()
			if err != nil {
				t.Fatal(err)
			}
			d := runDaemon(t, cfg)
			c, err := net.Dial("tcp", frontAddr(t, d))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "hello") {
				t.Fatalf("greeting %q, %v", line, err)
			}
			sideLn.Close()
			be := d.srv.Backends("t")[0]
			testutil.WaitFor(t, 10*time.Second, "backend marked down", func() bool { return !be.Healthy() })
			downAt := time.Now()
			if tc.cutWant {
				c.SetReadDeadline(downAt.Add(interval + 500*time.Millisecond))
				if _, err := r.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("connection after the backend went down: %v, want a reset", err)
				}
				return
			}
			// keep: the connection still echoes.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("still here\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := r.ReadString('\n'); err != nil || line != "still here\n" {
				t.Fatalf("kept connection: %q, %v", line, err)
			}
		})
	}
}

// TestPassiveIgnoresResetsAfterReplies: a backend that answers every
// client and then resets it (what servers do to a client that broke their
// protocol) stays up however many clients provoke it; one that refuses
// still goes down after exactly passive_fall attempts.
func TestPassiveIgnoresResetsAfterReplies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const answer = "-ERR Protocol error\r\n"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// Read a little, answer, close with the rest unread: a reset.
				io.ReadFull(c, make([]byte, 4))
				io.WriteString(c, answer)
				time.Sleep(10 * time.Millisecond)
				c.Close()
			}()
		}
	}()
	good := startDemo(t)
	refused := testutil.RefusedAddr(t, "tcp")
	cfg, err := config.New().AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").Retries(0).Backend(ln.Addr().String(), 1).
		HealthCheck("none").HealthPassiveFall(3).
		Frontend("u").Listen("127.0.0.1:0").Retries(0).Strategy("roundrobin").
		Backend(refused.String(), 1).Backend(good.Addr().String(), 1).
		HealthCheck("none").HealthPassiveFall(3).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := frontAddr(t, d)
	replier := d.srv.Backends("t")[0]
	const clients = 1000
	garbage := []byte(strings.Repeat("garbage ", 500))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		answered int
	)
	sem := make(chan struct{}, 32)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", front, 5*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write(garbage)
			if got, _ := io.ReadAll(c); string(got) == answer {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if !replier.Healthy() || answered != clients {
		t.Fatalf("%d of %d clients answered; backend healthy %v", answered, clients, replier.Healthy())
	}
	testutil.WaitFor(t, 5*time.Second, "every connection counted", func() bool {
		return replier.Stats().Closed[l4.CauseBackendReset] == clients
	})
	if hs, _ := d.checks.scheduler("t").State(replier); hs.PassiveFailures != 0 || !replier.Healthy() {
		t.Errorf("the replier: healthy %v, passive failure streak %d; want up, 0", replier.Healthy(), hs.PassiveFailures)
	}

	// One client at a time, so that each refusal lands before the next.
	addr := d.srv.Addrs("u")[0].String()
	refuser := d.srv.Backends("u")[0]
	sched := d.checks.scheduler("u")
	greeted := 0
	for i := 0; i < 20 && refuser.Healthy(); i++ {
		// The good backend greets; the refuser's client is reset.
		if greeting(t, addr) != "" {
			greeted++
		}
		tries := refuser.Stats().Failures[backend.FailRefused]
		testutil.WaitFor(t, 10*time.Second, "the refusal reported", func() bool {
			st, _ := sched.State(refuser)
			// At the third, wait for the flip itself.
			return !refuser.Healthy() || (uint64(st.PassiveFailures) == tries && tries < 3)
		})
	}
	if n := refuser.Stats().Failures[backend.FailRefused]; refuser.Healthy() || n != 3 {
		t.Errorf("refuser healthy %v after %d refusals; want down after passive_fall = 3", refuser.Healthy(), n)
	}
	// Each refused client ended as connect_failed (retries = 0), each
	// greeted one as client_fin once it closed, and nothing else.
	var closed [l4.NumCauses]uint64
	testutil.WaitFor(t, 5*time.Second, "every client of u counted", func() bool {
		fc, _ := d.srv.Counters("u")
		closed = fc.Closed
		return closed[l4.CauseConnectFailed]+closed[l4.CauseClientFIN] >= uint64(3+greeted)
	})
	want := [l4.NumCauses]uint64{l4.CauseConnectFailed: 3, l4.CauseClientFIN: uint64(greeted)}
	if closed != want {
		t.Errorf("frontend u ended %v (by cause index), want 3 connect_failed and %d client_fin", closed, greeted)
	}
}
