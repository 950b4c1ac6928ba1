package l4

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// An aborted plan changes nothing: the sockets it bound for a new address
// are closed, the backend weights stay, and the next reload can be
// prepared. Report says what the plan would have changed.
func TestReloadPlanAbort(t *testing.T) {
	a := namedBackend(t, "a")
	s := startServer(t, testConfig(t, []netip.AddrPort{a.addr}, nil))
	fds := openFDs(t)
	next := func() *config.Config {
		return buildConfig(t, config.New().Workers(2).Frontend("fe").Listen("127.0.0.1:0").Backend(a.addr.String(), 5).
			Frontend("new").Listen("127.0.0.1:0"), []netip.AddrPort{a.addr}, nil)
	}
	p, err := s.Prepare(next())
	if err != nil {
		t.Fatal(err)
	}
	r := p.Report()
	if !slices.Equal(r.FrontendsAdded, []string{"new"}) || !slices.Equal(r.FrontendsChanged, []string{"fe"}) ||
		len(r.ListenersOpened) != 1 || !slices.Equal(r.Backends["fe"].Updated, []string{a.addr.String()}) {
		t.Errorf("report %+v", r)
	}
	if got := p.Backends("new"); len(got) != 1 || got[0].Address() != a.addr {
		t.Errorf("the plan's backends of the new frontend: %v", got)
	}
	if got := p.Backends("none"); got != nil {
		t.Errorf("the plan's backends of no frontend: %v", got)
	}
	p.Abort()
	p.Abort() // a second Abort does nothing
	if ch := p.Commit(); !slices.Equal(ch.FrontendsAdded, []string{"new"}) {
		t.Errorf("Commit after Abort: %+v", ch)
	}
	if n := openFDs(t); n != fds {
		t.Errorf("%d fds after the abort, %d before", n, fds)
	}
	if s.Backends("fe")[0].Weight() != 1 || s.Addrs("new") != nil {
		t.Error("an aborted plan changed the server")
	}
	// The plan let go of the reload lock: the next one is prepared and
	// committed.
	ch := reload(t, s, next())
	if !slices.Equal(ch.FrontendsAdded, []string{"new"}) || s.Backends("fe")[0].Weight() != 5 {
		t.Errorf("the reload after the abort: %+v", ch)
	}
	if n, c, _ := greet(t, s.Addrs("new")[0]); n != "a" {
		t.Errorf("greeting %q on the new frontend", n)
	} else {
		c.Close()
	}
}

// A server that is not serving (not started, or closed) cannot prepare a
// reload.
func TestReloadNotServing(t *testing.T) {
	a := startBackend(t, echo)
	cfg := testConfig(t, []netip.AddrPort{a.addr}, nil)
	s, err := NewServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	const want = "l4: reload of a server that is not serving"
	if _, err := s.Prepare(cfg); err == nil || err.Error() != want {
		t.Errorf("Prepare before Start: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Prepare(cfg); err == nil || err.Error() != want {
		t.Errorf("Prepare after Close: %v", err)
	}
}

// namedObserver is an Observer that notes nothing: a distinct value to
// set.
type namedObserver struct{ name string }

func (*namedObserver) ConnectFailed(*backend.Backend, backend.FailReason) {}
func (*namedObserver) Reset(*backend.Backend)                             {}
func (*namedObserver) Served(*backend.Backend)                            {}

// Plan.Observe sets the observer of a frontend the plan changes; one the
// plan leaves as it is keeps its observer (the loops read it unlocked),
// and asking to change it is an error naming the frontend.
func TestReloadPlanObserve(t *testing.T) {
	a := startBackend(t, echo)
	first := &namedObserver{"first"}
	s := startObserved(t, testConfig(t, []netip.AddrPort{a.addr}, nil), first)
	// The same config: "fe" is unchanged.
	p, err := s.Prepare(testConfig(t, []netip.AddrPort{a.addr}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if err := p.Observe("fe", first); err != nil {
		t.Errorf("the same observer on an unchanged frontend: %v", err)
	}
	if err := p.Observe("fe", &namedObserver{"second"}); err == nil || err.Error() != `frontend "fe" is unchanged: its observer cannot change` {
		t.Errorf("another observer on an unchanged frontend: %v", err)
	}
	if err := p.Observe("none", first); !errors.Is(err, ErrUnknownFrontend) {
		t.Errorf("observer of no frontend: %v", err)
	}
}

// serverSocketOf returns the server's socket of the connection whose
// client is c: the fd of this process whose peer is c's local address.
func serverSocketOf(t *testing.T, s *Server, c net.Conn) int {
	t.Helper()
	want := c.LocalAddr().(*net.TCPAddr).AddrPort()
	fd := -1
	onLoops(s, func(l *loop) {
		for cn := range l.liveConns() {
			if cn.client == want {
				fd = cn.cfd
			}
		}
	})
	if fd < 0 {
		t.Fatalf("the server holds no connection from %v", want)
	}
	return fd
}

// A reload that changes the keepalive settings retunes the listening
// sockets it keeps, so the clients accepted from then on get the new ones
// (an accepted socket inherits its listener's); the client accepted before
// keeps its own.
func TestReloadRetunesKeepalive(t *testing.T) {
	a := startBackend(t, echo)
	cfg := func(on bool, idle time.Duration) *config.Config {
		return testConfig(t, []netip.AddrPort{a.addr}, func(fb *config.FrontendBuilder) {
			fb.TCPKeepalive(on)
			if on {
				fb.KeepaliveIdle(idle).KeepaliveInterval(time.Second).KeepaliveCount(3)
			}
		})
	}
	s := startServer(t, cfg(true, 30*time.Second))
	opts := func(c net.Conn) (on, idle int) {
		t.Helper()
		fd := serverSocketOf(t, s, c)
		on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		if err != nil {
			t.Fatal(err)
		}
		idle, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		if err != nil {
			t.Fatal(err)
		}
		return on, idle
	}
	dial := func() net.Conn {
		c := dialFE(t, s)
		testutil.WaitFor(t, 5*time.Second, "the client accepted", func() bool {
			list, _ := s.Connections("fe", 0, 100)
			for _, ci := range list {
				if ci.Client == c.LocalAddr().(*net.TCPAddr).AddrPort() {
					return true
				}
			}
			return false
		})
		return c
	}
	before := dial()
	if on, idle := opts(before); on != 1 || idle != 30 {
		t.Fatalf("keepalive %d, idle %d s; want on, 30", on, idle)
	}
	reload(t, s, cfg(true, 45*time.Second))
	if on, idle := opts(dial()); on != 1 || idle != 45 {
		t.Errorf("after the reload to 45 s: keepalive %d, idle %d s", on, idle)
	}
	reload(t, s, cfg(false, 0))
	if on, _ := opts(dial()); on != 0 {
		t.Errorf("after the reload to keepalive off: keepalive %d", on)
	}
	if on, idle := opts(before); on != 1 || idle != 30 {
		t.Errorf("the client accepted before the reloads: keepalive %d, idle %d s; want on, 30", on, idle)
	}
}

// A listener stopped at the frontend's max_connections looks again when a
// reload raises the cap: the client waiting in the backlog is taken at
// once, without waiting for a connection to end.
func TestReloadRaisedCapResumesListener(t *testing.T) {
	a := startBackend(t, greeter)
	cfg := func(max int) *config.Config {
		return buildConfig(t, config.New().Workers(1).ConnectionsBuffer(testLogBuffer).
			Frontend("fe").Listen("127.0.0.1:0").MaxConnections(max), []netip.AddrPort{a.addr}, nil)
	}
	s := startServer(t, cfg(1))
	first := dialFE(t, s)
	if !greeted(first, bufio.NewReader(first), 5*time.Second) {
		t.Fatal("first client not served")
	}
	second := dialFE(t, s)
	sr := bufio.NewReader(second)
	if greeted(second, sr, 200*time.Millisecond) {
		t.Fatal("second client served past max_connections = 1")
	}
	// The same address as configured (127.0.0.1:0): the listener and its
	// backlog are kept.
	reload(t, s, cfg(2))
	if !greeted(second, sr, 5*time.Second) {
		t.Fatal("the client in the backlog was not taken after the cap was raised")
	}
}

// A reload that changes max_connections_per_client gives the frontend a
// new table, counting from the connections accepted under it; the
// connection accepted before is not in it.
func TestReloadNewPerClientTable(t *testing.T) {
	a := startBackend(t, greeter)
	cfg := func(perClient int) *config.Config {
		return testConfig(t, []netip.AddrPort{a.addr}, func(fb *config.FrontendBuilder) { fb.MaxConnectionsPerClient(perClient) })
	}
	s := startServer(t, cfg(1))
	old := dialFE(t, s)
	if !greeted(old, bufio.NewReader(old), 5*time.Second) {
		t.Fatal("first client not served")
	}
	reload(t, s, cfg(2))
	for i := 0; i < 2; i++ {
		c := dialFE(t, s)
		if !greeted(c, bufio.NewReader(c), 5*time.Second) {
			t.Fatalf("client %d after the reload not served", i)
		}
	}
	if err := dialAndRead(s.Addrs("fe")[0].String()); err != nil && !errors.Is(err, errConnReset) {
		t.Fatal(err)
	}
	waitCause(t, s, CauseClientLimit, 1)
	// The refused client's reservation is returned just after its end is
	// counted.
	testutil.WaitFor(t, 5*time.Second, "3 connections: the one from before and two under the new table", func() bool {
		fc, _ := s.Counters("fe")
		return fc.Active == 3
	})
}

// An address a reload removed drains its UDP flows; a second reload while
// it drains leaves it draining, and it closes at the end of the drain.
func TestReloadWhileUDPAddressDrains(t *testing.T) {
	back := startUDPBackend(t, taggedEcho('e')).addr
	const drain = 500 * time.Millisecond
	build := func(idle time.Duration, listen ...string) *config.Config {
		cfg, err := config.New().Workers(2).ShutdownTimeout(drain).Frontend("dns").Protocol(config.ProtocolUDP).
			Listen(listen...).IdleTimeout(idle).Backend(back.String(), 1).Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	s := startServer(t, build(time.Minute, "127.0.0.1:0", "127.0.0.2:0"))
	addrs := s.Addrs("dns")
	kept, dropped := udpClient(t, addrs[0]), udpClient(t, addrs[1])
	udpRoundTrip(t, kept, "one")
	udpRoundTrip(t, dropped, "two")
	start := time.Now()
	if ch := reload(t, s, build(time.Minute, "127.0.0.1:0")); len(ch.ListenersClosed) != 1 {
		t.Fatalf("change %+v", ch)
	}
	// Within the drain: another change to the frontend.
	if ch := reload(t, s, build(2*time.Minute, "127.0.0.1:0")); len(ch.ListenersClosed) != 0 || len(ch.ListenersOpened) != 0 {
		t.Errorf("second change %+v", ch)
	}
	udpRoundTrip(t, dropped, "three") // its flow still drains
	testutil.WaitFor(t, 5*time.Second, "the removed address's flows cut", func() bool {
		c, _ := s.Counters("dns")
		return c.Active == 1
	})
	if el := time.Since(start); el < drain {
		t.Errorf("the drained address closed after %v, before the drain of %v", el, drain)
	}
	udpRoundTrip(t, kept, "four")
}
