package l4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// 100 clients send 10 datagrams each through 2 echo backends: every reply
// reaches the client that asked, and each client stays on one backend.
func TestUDPFlowsStayOnTheirBackend(t *testing.T) {
	b1 := startUDPBackend(t, taggedEcho('A'))
	b2 := startUDPBackend(t, taggedEcho('B'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b1.addr, b2.addr}, nil))
	fe := s.Addrs("fe")[0]

	const clients, each = 100, 10
	tags := make([]byte, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		c := udpClient(t, fe)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				msg := []byte(fmt.Sprintf("client %d datagram %d", i, j))
				got, err := udpExchange(c, msg, 5*time.Second)
				if err != nil {
					errs <- fmt.Errorf("client %d datagram %d: %w", i, j, err)
					return
				}
				if !bytes.Equal(got[1:], msg) {
					errs <- fmt.Errorf("client %d got %q, want the echo of %q", i, got, msg)
					return
				}
				if j == 0 {
					tags[i] = got[0]
				} else if got[0] != tags[i] {
					errs <- fmt.Errorf("client %d moved from backend %c to %c", i, tags[i], got[0])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	perTag := map[byte]int{}
	for _, tag := range tags {
		perTag[tag]++
	}
	if perTag['A'] == 0 || perTag['B'] == 0 || perTag['A']+perTag['B'] != clients {
		t.Errorf("clients per backend = %v, want both backends used by %d clients", perTag, clients)
	}
	// Replies are counted once the loop's sendmmsg returned, which can be
	// a moment after the client read the last one.
	testutil.WaitFor(t, 10*time.Second, "every reply counted", func() bool { return counters(t, s).DatagramsOut == clients*each })
	c := counters(t, s)
	if c.Total != clients || c.Active != clients || c.DatagramsIn != clients*each || c.DatagramsOut != clients*each {
		t.Errorf("flows total %d active %d, datagrams in %d out %d; want %d, %d, %d, %d",
			c.Total, c.Active, c.DatagramsIn, c.DatagramsOut, clients, clients, clients*each, clients*each)
	}
	if d := totalDrops(c); d != 0 {
		t.Errorf("drops = %v, want none", c.Drops)
	}
	if got := b1.received.Load() + b2.received.Load(); got != clients*each {
		t.Errorf("backends received %d datagrams, want %d", got, clients*each)
	}
	st1 := s.Backends("fe")[0].Stats()
	if st1.DatagramsUp != uint64(b1.received.Load()) || st1.DatagramsDown != st1.DatagramsUp {
		t.Errorf("backend A datagrams up %d down %d, want %d each", st1.DatagramsUp, st1.DatagramsDown, b1.received.Load())
	}
}

// responses = 1 ends a flow on its reply; the client's next datagram opens
// a new one.
func TestUDPResponsesOneFreesFlowOnReply(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.Responses(1)
	}))
	base := openFDs(t)
	c := udpClient(t, s.Addrs("fe")[0])
	for i := 1; i <= 3; i++ {
		if _, err := udpExchange(c, []byte("query"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the flow closed on its reply", func() bool { return counters(t, s).Active == 0 })
		if got := counters(t, s).Total; got != uint64(i) {
			t.Fatalf("after query %d: flows opened = %d, want %d", i, got, i)
		}
	}
	if got := counters(t, s).Closed; got[CauseReplied] != 3 {
		t.Errorf("causes:%s; want replied=3", causeCounts(got))
	}
	// The client socket is the one fd this test added.
	testutil.WaitFor(t, 10*time.Second, "fds back to baseline", func() bool { return openFDs(t) <= base+1 })
}

// responses = 0 keeps no flow: every datagram is picked and sent on the
// loop's shared socket for its backend.
func TestUDPResponsesZeroKeepsNoFlow(t *testing.T) {
	b := startUDPBackend(t, func([]byte) udpReply { return udpReply{} })
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.Responses(0)
	}))
	base := openFDs(t)
	const clients, each = 5, 10
	for i := 0; i < clients; i++ {
		c := udpClient(t, s.Addrs("fe")[0])
		for j := 0; j < each; j++ {
			if _, err := c.Write([]byte("log line")); err != nil {
				t.Fatal(err)
			}
		}
	}
	testutil.WaitFor(t, 5*time.Second, "every datagram at the backend", func() bool { return b.received.Load() == clients*each })
	c := counters(t, s)
	if c.Active != 0 || c.Total != clients*each || c.DatagramsIn != clients*each || totalDrops(c) != 0 {
		t.Errorf("active %d total %d in %d drops %v; want 0, %d, %d, none", c.Active, c.Total, c.DatagramsIn, c.Drops, clients*each, clients*each)
	}
	// The clients' sockets, plus at most one shared socket per loop.
	if got, max := openFDs(t), base+clients+2; got > max {
		t.Errorf("open fds = %d, want at most %d", got, max)
	}
}

// A flow ends after idle_timeout without traffic; one with traffic lives on.
func TestUDPIdleTimeout(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	// Long enough that the busy client's pauses, on a loaded machine,
	// stay well inside it.
	const idle = time.Second
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.IdleTimeout(idle)
	}))
	quiet := udpClient(t, s.Addrs("fe")[0])
	busy := udpClient(t, s.Addrs("fe")[0])
	for _, c := range []*net.UDPConn{quiet, busy} {
		if _, err := udpExchange(c, []byte("hello"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	// Keep busy talking for three idle periods.
	for time.Since(start) < 3*idle {
		if _, err := udpExchange(busy, []byte("still here"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle / 6) // pacing the busy client, not waiting for a result
	}
	c := counters(t, s)
	if c.Active != 1 || c.Total != 2 {
		t.Fatalf("after %v: active %d total %d, want the busy flow alone (1 of 2)", time.Since(start), c.Active, c.Total)
	}
	testutil.WaitFor(t, 5*time.Second, "the busy flow idle too", func() bool { return counters(t, s).Active == 0 })
	if got := counters(t, s).Closed; got[CauseIdleTimeout] != 2 {
		t.Errorf("causes:%s; want idle_timeout=2", causeCounts(got))
	}
}

// max_flows refuses new flows beyond the cap and counts them; flows
// already open keep working.
func TestUDPMaxFlows(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.MaxFlows(3)
	}))
	var open []*net.UDPConn
	for i := 0; i < 3; i++ {
		c := udpClient(t, s.Addrs("fe")[0])
		if _, err := udpExchange(c, []byte("in"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	for i := 0; i < 2; i++ {
		c := udpClient(t, s.Addrs("fe")[0])
		if _, err := udpExchange(c, []byte("over"), 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a client beyond max_flows got %v, want no reply", err)
		}
	}
	for _, c := range open {
		if _, err := udpExchange(c, []byte("again"), 5*time.Second); err != nil {
			t.Fatalf("an open flow stopped working: %v", err)
		}
	}
	c := counters(t, s)
	if c.Drops[DropMaxFlows] != 2 || c.Active != 3 || c.Total != 3 {
		t.Errorf("max_flows drops %d, active %d, total %d; want 2, 3, 3", c.Drops[DropMaxFlows], c.Active, c.Total)
	}
}

// A reply from an address other than the flow's backend is dropped and
// counted; the genuine reply goes through.
func TestUDPForeignReplyDropped(t *testing.T) {
	spoofer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer spoofer.Close()
	var spoofed sync.WaitGroup
	spoofed.Add(1)
	b := startUDPBackend(t, func(p []byte) udpReply {
		// Before answering, reply to the same flow from another socket,
		// as a spoofer guessing the port, or a backend answering from
		// the wrong address, would.
		return udpReply{data: []byte("forged"), via: spoofer}
	})
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, nil))
	c := udpClient(t, s.Addrs("fe")[0])
	if got, err := udpExchange(c, []byte("query"), 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client got %q, %v; want nothing", got, err)
	}
	testutil.WaitFor(t, 10*time.Second, "the forged reply counted", func() bool { return counters(t, s).Drops[DropForeign] == 1 })
	if got := s.Backends("fe")[0].Stats().Foreign; got != 1 {
		t.Errorf("backend foreign = %d, want 1", got)
	}
	if got := counters(t, s).DatagramsOut; got != 0 {
		t.Errorf("datagrams out = %d, want 0", got)
	}
}

// On a socket bound to a wildcard address, replies leave from the address
// the client wrote to: a client connected to 127.0.0.2 hears back.
func TestUDPWildcardRepliesFromDestination(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.Listen("0.0.0.0:0")
	}))
	var port uint16
	for _, a := range s.Addrs("fe") {
		if a.Addr().IsUnspecified() {
			port = a.Port()
		}
	}
	if port == 0 {
		t.Fatalf("no wildcard address among %v", s.Addrs("fe"))
	}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		c := udpClient(t, netip.AddrPortFrom(netip.MustParseAddr(ip), port))
		got, err := udpExchange(c, []byte("who is there"), 5*time.Second)
		if err != nil {
			t.Fatalf("client of %s: %v", ip, err)
		}
		if string(got) != "Awho is there" {
			t.Fatalf("client of %s got %q", ip, got)
		}
	}
}

// The access list applies to UDP clients: a refused client's datagrams
// are dropped and counted.
func TestUDPAccessList(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.Allow("127.0.0.2/32")
	}))
	c := udpClient(t, s.Addrs("fe")[0]) // from 127.0.0.1
	if _, err := udpExchange(c, []byte("let me in"), 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a denied client got %v, want no reply", err)
	}
	cc := counters(t, s)
	if cc.Drops[DropAccessList] != 1 || cc.Total != 0 || b.received.Load() != 0 {
		t.Errorf("access-list drops %d, flows %d, backend got %d; want 1, 0, 0", cc.Drops[DropAccessList], cc.Total, b.received.Load())
	}
}

// An ICMP port unreachable from a dead backend counts as a refused connect,
// reaches the observer and ends the flow, so the client's retry is picked
// afresh; once the observer marks the backend down, every new flow reaches
// a live backend.
func TestUDPDeadBackendReported(t *testing.T) {
	live1 := startUDPBackend(t, taggedEcho('A'))
	live2 := startUDPBackend(t, taggedEcho('B'))
	dead := testutil.RefusedAddr(t, "udp")
	s := startObserved(t, udpConfig(t, []netip.AddrPort{dead, live1.addr, live2.addr}, nil), &markDown{after: 2})
	deadBE := s.Backends("fe")[0]

	// Clients retry on silence, as DNS resolvers do.
	ask := func(c *net.UDPConn) error {
		for try := 0; try < 5; try++ {
			if _, err := udpExchange(c, []byte("q"), 300*time.Millisecond); err == nil {
				return nil
			}
		}
		return errors.New("no reply after 5 tries")
	}
	for i := 0; i < 10; i++ {
		if err := ask(udpClient(t, s.Addrs("fe")[0])); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the dead backend marked down", func() bool { return !deadBE.Healthy() })
	refused := deadBE.Stats().Failures[0]
	if refused < 2 || counters(t, s).Drops[DropRefused] != refused {
		t.Errorf("refused failures %d, refused drops %d; want at least 2 and equal", refused, counters(t, s).Drops[DropRefused])
	}
	before := live1.received.Load() + live2.received.Load()
	for i := 0; i < 20; i++ {
		c := udpClient(t, s.Addrs("fe")[0])
		if _, err := udpExchange(c, []byte("q"), 5*time.Second); err != nil {
			t.Fatalf("new flow %d after mark-down: %v", i, err)
		}
	}
	if got := live1.received.Load() + live2.received.Load() - before; got != 20 {
		t.Errorf("live backends got %d of 20 new flows' datagrams", got)
	}
	if got := deadBE.Stats().Failures[0]; got != refused {
		t.Errorf("the down backend was tried again: refused %d, then %d", refused, got)
	}
}

// markDown is an Observer that marks a backend down after a number of
// failures, as the health scheduler does with passive_fall.
type markDown struct {
	after int
	mu    sync.Mutex
	fails map[string]int
}

func (m *markDown) ConnectFailed(b *backend.Backend, _ backend.FailReason) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fails == nil {
		m.fails = map[string]int{}
	}
	m.fails[b.Name()]++
	if m.fails[b.Name()] >= m.after {
		b.SetHealthy(false)
	}
}
func (m *markDown) Reset(*backend.Backend)  {}
func (m *markDown) Served(*backend.Backend) {}

// A graceful shutdown refuses new flows, keeps relaying for open ones and
// returns once they have ended. With more loops than flows, some loops
// have no flow to wait for: their sockets must stay open too, or the
// kernel would hash open flows' datagrams to other loops.
func TestUDPShutdownDrainsFlows(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	const idle = 500 * time.Millisecond
	cfg, err := config.New().Workers(4).Frontend("fe").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").
		HealthCheck(config.CheckNone).IdleTimeout(idle).Backend(b.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg)
	const clients = 8
	var old []*net.UDPConn
	for i := 0; i < clients; i++ {
		c := udpClient(t, s.Addrs("fe")[0])
		if _, err := udpExchange(c, []byte("before"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		old = append(old, c)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	testutil.WaitFor(t, 10*time.Second, "shutdown begun", func() bool { return !s.Started() })
	for i, c := range old {
		if _, err := udpExchange(c, []byte("during"), 5*time.Second); err != nil {
			t.Fatalf("open flow %d during shutdown: %v", i, err)
		}
	}
	late := udpClient(t, s.Addrs("fe")[0])
	if _, err := udpExchange(late, []byte("new"), 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a new flow during shutdown got %v, want no reply", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last flow went idle")
	}
	c := counters(t, s)
	if c.Drops[DropShutdown] != 1 || c.DatagramsOut != 2*clients {
		t.Errorf("shutdown drops %d, datagrams out %d; want 1, %d", c.Drops[DropShutdown], c.DatagramsOut, 2*clients)
	}
}

// A flow whose backend goes down or into maint moves to another backend
// with its next datagram; a drained backend keeps its flows.
func TestUDPFlowLeavesBackendOutOfService(t *testing.T) {
	for _, tc := range []struct {
		name  string
		take  func(*backend.Backend)
		moves bool
	}{
		{"down", func(b *backend.Backend) { b.SetHealthy(false) }, true},
		{"maint", func(b *backend.Backend) { b.SetState(backend.Maint) }, true},
		{"drain", func(b *backend.Backend) { b.SetState(backend.Drain) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b1 := startUDPBackend(t, taggedEcho('A'))
			b2 := startUDPBackend(t, taggedEcho('B'))
			s := startServer(t, udpConfig(t, []netip.AddrPort{b1.addr, b2.addr}, nil))
			c := udpClient(t, s.Addrs("fe")[0])
			got, err := udpExchange(c, []byte("q"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			first := s.Backends("fe")[0]
			if got[0] == 'B' {
				first = s.Backends("fe")[1]
			}
			tc.take(first)
			again, err := udpExchange(c, []byte("q"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if moved := again[0] != got[0]; moved != tc.moves {
				t.Errorf("backend %c then %c; want moved = %v", got[0], again[0], tc.moves)
			}
			want := uint64(1)
			if tc.moves {
				want = 2
			}
			if cc := counters(t, s); cc.Total != want || cc.Active != 1 {
				t.Errorf("flows opened %d, active %d; want %d, 1", cc.Total, cc.Active, want)
			}
		})
	}
}

// A backend written with a zone its address does not need (::1%lo) still
// has its replies recognised: received addresses carry no zone there.
func TestUDPZonedBackendAddress(t *testing.T) {
	b := startUDPBackendOn(t, net.IPv6loopback, taggedEcho('Z'))
	zoned := netip.AddrPortFrom(b.addr.Addr().WithZone("lo"), b.addr.Port())
	s := startServer(t, udpConfig(t, []netip.AddrPort{zoned}, nil))
	got, err := udpExchange(udpClient(t, s.Addrs("fe")[0]), []byte("q"), 5*time.Second)
	if err != nil || string(got) != "Zq" {
		t.Fatalf("reply %q, %v", got, err)
	}
	if d := counters(t, s).Drops[DropForeign]; d != 0 {
		t.Errorf("foreign drops = %d, want 0", d)
	}
}

// With maglev a client's backend depends only on its address and the
// backend set: two servers in turn, as after a restart or on two
// instances, send each client to the same backend.
func TestUDPMaglevSameBackendAcrossInstances(t *testing.T) {
	b1 := startUDPBackend(t, taggedEcho('A'))
	b2 := startUDPBackend(t, taggedEcho('B'))
	b3 := startUDPBackend(t, taggedEcho('C'))
	backends := []netip.AddrPort{b1.addr, b2.addr, b3.addr}
	const clients = 30
	var first []byte
	for instance := 0; instance < 2; instance++ {
		s, err := NewServer(udpConfig(t, backends, func(f *config.FrontendBuilder) {
			f.Strategy("maglev").Responses(1)
		}), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		var tags []byte
		for i := 0; i < clients; i++ {
			// Each client from its own address, the same in both rounds.
			from := &net.UDPAddr{IP: net.IPv4(127, 0, 1, byte(1+i))}
			c, err := net.DialUDP("udp", from, net.UDPAddrFromAddrPort(s.Addrs("fe")[0]))
			if err != nil {
				t.Fatal(err)
			}
			got, err := udpExchange(c, []byte("q"), 5*time.Second)
			c.Close()
			if err != nil {
				t.Fatalf("instance %d client %d: %v", instance, i, err)
			}
			tags = append(tags, got[0])
		}
		s.Close()
		if instance == 0 {
			first = tags
		} else if !bytes.Equal(tags, first) {
			t.Errorf("backends per client: first instance %q, second %q", first, tags)
		}
	}
	if bytes.Count(first, []byte{first[0]}) == clients {
		t.Errorf("all %d clients on backend %c: the test shows nothing", clients, first[0])
	}
}

// IPv6 end to end: a backend on ::1, a frontend on ::1 and on the IPv6
// wildcard, whose replies leave from the address the client wrote to.
func TestUDPIPv6(t *testing.T) {
	b := startUDPBackendOn(t, net.IPv6loopback, taggedEcho('6'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.Listen("[::1]:0", "[::]:0")
	}))
	var addrs []netip.AddrPort
	for _, a := range s.Addrs("fe") {
		if a.Addr().Is6() {
			addrs = append(addrs, netip.AddrPortFrom(netip.IPv6Loopback(), a.Port()))
		}
	}
	if len(addrs) != 2 {
		t.Fatalf("IPv6 addresses %v, want two", s.Addrs("fe"))
	}
	for _, a := range addrs {
		got, err := udpExchange(udpClient(t, a), []byte("over v6"), 5*time.Second)
		if err != nil || string(got) != "6over v6" {
			t.Fatalf("through %v: %q, %v", a, got, err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "both replies counted", func() bool { return counters(t, s).DatagramsOut == 2 })
	if c := counters(t, s); totalDrops(c) != 0 {
		t.Errorf("datagrams out %d, drops %v; want 2, none", c.DatagramsOut, c.Drops)
	}
}

// With responses = 0 the ICMP errors of a dead backend still count against
// it, on the loop's shared socket, and the error one datagram caused does
// not cost the next one its send.
func TestUDPResponsesZeroDeadBackend(t *testing.T) {
	dead := testutil.RefusedAddr(t, "udp")
	s := startServer(t, udpConfig(t, []netip.AddrPort{dead}, func(f *config.FrontendBuilder) {
		f.Responses(0)
	}))
	c := udpClient(t, s.Addrs("fe")[0])
	for i := 0; i < 3; i++ {
		if _, err := c.Write([]byte("log line")); err != nil {
			t.Fatal(err)
		}
	}
	be := s.Backends("fe")[0]
	testutil.WaitFor(t, 10*time.Second, "three refusals counted", func() bool {
		return be.Stats().Failures[backend.FailRefused] == 3 && counters(t, s).Drops[DropRefused] == 3
	})
	if c := counters(t, s); c.DatagramsIn != 3 || c.Drops[DropSendError] != 0 {
		t.Errorf("datagrams in %d, send errors %d; want 3, 0", c.DatagramsIn, c.Drops[DropSendError])
	}
}

// UDP flows are listed beside connections and can be closed by ID.
func TestUDPFlowsListedAndClosed(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, nil))
	c := udpClient(t, s.Addrs("fe")[0])
	if _, err := udpExchange(c, []byte("12345"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	list, total := s.Connections("fe", 0, 10)
	client := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if total != 1 || len(list) != 1 || list[0].Client != client || list[0].Backend != b.addr.String() ||
		list[0].BytesIn != 5 || list[0].BytesOut != 6 {
		t.Fatalf("flows %+v (total %d), want one from %v to %v with 5 bytes in, 6 out", list, total, client, b.addr)
	}
	if err := s.CloseConnection(list[0].ID); err != nil {
		t.Fatal(err)
	}
	if c := counters(t, s); c.Active != 0 || c.Closed[CauseAdminKill] != 1 {
		t.Errorf("active flows after close = %d, causes:%s; want 0, admin_kill=1", c.Active, causeCounts(c.Closed))
	}
	if _, err := udpExchange(c, []byte("again"), 5*time.Second); err != nil {
		t.Fatalf("the client's next datagram: %v", err)
	}
	if got := counters(t, s).Total; got != 2 {
		t.Errorf("flows opened = %d, want 2", got)
	}
}

// The smallest and the largest datagrams go through whole: an empty one,
// and one of 65507 bytes, the most an IPv4 UDP datagram can carry.
func TestUDPDatagramSizes(t *testing.T) {
	b := startUDPBackend(t, func(p []byte) udpReply { return udpReply{data: append([]byte{}, p...)} })
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, nil))
	c := udpClient(t, s.Addrs("fe")[0])
	if err := c.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 65507)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, msg := range [][]byte{{}, big, []byte("between")} {
		got, err := udpExchange(c, msg, 5*time.Second)
		if err != nil {
			t.Fatalf("%d-byte datagram: %v", len(msg), err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%d-byte datagram came back as %d bytes", len(msg), len(got))
		}
	}
	testutil.WaitFor(t, 10*time.Second, "all three replies counted", func() bool { return counters(t, s).DatagramsOut == 3 })
	if c := counters(t, s); c.BytesIn != 65507+7 || c.BytesOut != 65507+7 || totalDrops(c) != 0 {
		t.Errorf("bytes in %d out %d, drops %v; want %d each, none", c.BytesIn, c.BytesOut, c.Drops, 65507+7)
	}
}

// Replies for two sockets of one loop share the loop's reply batch: with
// clients of both talking at once, every reply still leaves from the
// socket, and the address, its client wrote to.
func TestUDPTwoSocketsInterleaved(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.Listen("0.0.0.0:0")
	}))
	var targets []netip.AddrPort
	for _, a := range s.Addrs("fe") {
		if a.Addr().IsUnspecified() {
			a = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), a.Port())
		}
		targets = append(targets, a)
	}
	const clients, each = 20, 20
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		c := udpClient(t, targets[i%2])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				msg := fmt.Sprintf("%d/%d", i, j)
				got, err := udpExchange(c, []byte(msg), 5*time.Second)
				if err != nil || string(got) != "A"+msg {
					errs <- fmt.Errorf("client %d via %v: %q, %v", i, targets[i%2], got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	testutil.WaitFor(t, 10*time.Second, "every reply counted", func() bool { return counters(t, s).DatagramsOut == clients*each })
}

// A flow's first reply reports its backend as served, once. An ICMP error
// after replies neither charges the backend nor ends the flow (it may be
// forged, or one lost datagram); a second one with no reply in between
// ends the flow, still without a charge; the new flow the client's next
// datagram opens has no reply, and its refusal is charged.
func TestUDPServedOnFirstReplyOnly(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	rec := newRecorder()
	s := startObserved(t, udpConfig(t, []netip.AddrPort{b.addr}, nil), rec)
	be := s.Backends("fe")[0]
	c := udpClient(t, s.Addrs("fe")[0])
	for i := 0; i < 3; i++ {
		if _, err := udpExchange(c, []byte("q"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the first reply reported as served", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.connected[be] == 1
	})
	b.conn.Close() // the backend dies: its port now refuses
	refusals := func() uint64 { return counters(t, s).Drops[DropRefused] }
	for i := uint64(1); i <= 2; i++ {
		if _, err := c.Write([]byte("anyone?")); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the ICMP error counted", func() bool { return refusals() == i })
	}
	testutil.WaitFor(t, 10*time.Second, "the flow closed", func() bool { return counters(t, s).Active == 0 })
	if got := counters(t, s).Closed[CauseICMPError]; got != 1 {
		t.Errorf("flows ended by ICMP errors: %d, want 1", got)
	}
	rec.mu.Lock()
	failed := len(rec.failed[be])
	rec.mu.Unlock()
	if failed != 0 {
		t.Fatalf("%d failures charged for a flow that had replies, want 0", failed)
	}
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the new flow's refusal reported", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.failed[be]) == 1
	})
	testutil.WaitFor(t, 10*time.Second, "the new flow closed", func() bool { return counters(t, s).Closed[CauseICMPError] == 2 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.connected[be] != 1 || len(rec.failed[be]) != 1 {
		t.Errorf("served %d, failed %v; want 1 served (the first reply) and 1 failure", rec.connected[be], rec.failed[be])
	}
}

// With responses = 1 a flow reads one reply at a time. A foreign datagram
// queued ahead of the genuine reply takes that read and is dropped; the
// reply, left on the level-triggered socket, is read at the next wake-up
// and reaches the client.
func TestUDPForeignAheadOfReply(t *testing.T) {
	spoofer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer spoofer.Close()
	backend, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	cfg := buildConfig(t, config.New().Workers(1).Frontend("fe").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").
		HealthCheck(config.CheckNone).Responses(1), []netip.AddrPort{backend.LocalAddr().(*net.UDPAddr).AddrPort()}, nil)
	s := startServer(t, cfg)
	c := udpClient(t, s.Addrs("fe")[0])
	if _, err := c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	_, flow, err := backend.ReadFromUDPAddrPort(buf) // the flow's socket
	if err != nil {
		t.Fatal(err)
	}
	// Both datagrams are queued on the flow's socket before its loop
	// reads: the forged one first.
	stalled, sent := make(chan struct{}), make(chan struct{})
	s.loops[0].post(func(*loop) {
		close(stalled)
		<-sent
	})
	<-stalled
	spoofer.WriteToUDPAddrPort([]byte("forged"), flow)
	backend.WriteToUDPAddrPort([]byte("genuine"), flow)
	close(sent)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "genuine" {
		t.Fatalf("client read %q, %v; want \"genuine\"", buf[:n], err)
	}
	testutil.WaitFor(t, 10*time.Second, "the forged datagram counted", func() bool { return counters(t, s).Drops[DropForeign] == 1 })
}
