package l4

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// namedBackend greets every client with its name and a newline, then
// echoes.
func namedBackend(t testing.TB, name string) *testBackend {
	return startBackend(t, func(c net.Conn) {
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			c.Close()
			return
		}
		echo(c)
	})
}

// greet connects to addr and returns the greeting and the open connection.
func greet(t testing.TB, addr netip.AddrPort) (string, *net.TCPConn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting from %v: %v", addr, err)
	}
	return strings.TrimSuffix(line, "\n"), c.(*net.TCPConn), r
}

// echoes checks that an open connection still relays both ways.
func echoes(t testing.TB, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	line, err := r.ReadString('\n')
	if err != nil || line != msg+"\n" {
		t.Fatalf("echo of %q: %q, %v", msg, line, err)
	}
}

// listeningInodes returns the inodes of this process's listening sockets
// bound to addr: the kernel's identity of each socket, which closing and
// binding again would change.
func listeningInodes(t testing.TB, addr netip.AddrPort) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		var fd int
		fmt.Sscan(e.Name(), &fd)
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		in4, ok := sa.(*unix.SockaddrInet4)
		if !ok || netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)) != addr {
			continue
		}
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && on == 1 {
			out = append(out, link)
		}
	}
	slices.Sort(out)
	return out
}

func reload(t testing.TB, s *Server, cfg *config.Config) Change {
	t.Helper()
	p, err := s.Prepare(cfg)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return p.Commit()
}

// TestReloadKeepsSocketsAndConnections reloads a frontend with a new
// backend list, weights and settings, and adds a frontend: the listening
// sockets are the same kernel sockets, an open connection relays on, and
// new clients follow the new backend list.
func TestReloadKeepsSocketsAndConnections(t *testing.T) {
	a, b, c := namedBackend(t, "a"), namedBackend(t, "b"), namedBackend(t, "c")
	base := func() *config.FrontendBuilder {
		return config.New().Workers(2).Frontend("fe").Listen("127.0.0.1:0").IdleTimeout(time.Minute)
	}
	cfg1, err := base().Backend(a.addr.String(), 1).Backend(b.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg1)
	addr := s.Addrs("fe")[0]
	before := listeningInodes(t, addr)
	if len(before) != 2 {
		t.Fatalf("%d listening sockets on %v, want one per loop", len(before), addr)
	}
	name, open, r := greet(t, addr)
	counters, _ := s.Counters("fe")

	// b leaves, c comes, a's weight changes, the idle timeout too, and a
	// second frontend opens.
	cfg2, err := base().IdleTimeout(2*time.Minute).Backend(a.addr.String(), 3).Backend(c.addr.String(), 1).
		Frontend("fe2").Listen("127.0.0.1:0").Backend(c.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	ch := reload(t, s, cfg2)
	if !slices.Equal(ch.FrontendsAdded, []string{"fe2"}) || !slices.Equal(ch.FrontendsChanged, []string{"fe"}) ||
		len(ch.ListenersOpened) != 1 || len(ch.ListenersClosed) != 0 || ch.LateLoops != 0 {
		t.Errorf("change %+v", ch)
	}
	if got := ch.Backends["fe"]; !slices.Equal(got.Added, []string{c.addr.String()}) ||
		!slices.Equal(got.Updated, []string{a.addr.String()}) || !slices.Equal(got.Removed, []string{b.addr.String()}) {
		t.Errorf("backend change %+v", got)
	}
	if after := listeningInodes(t, addr); !slices.Equal(before, after) || s.Addrs("fe")[0] != addr {
		t.Fatalf("listening sockets %v became %v", before, after)
	}
	echoes(t, open, r, "still there, on "+name)

	// New clients: a three times as often as c, b never.
	counts := map[string]int{}
	for i := 0; i < 8; i++ {
		n, conn, _ := greet(t, addr)
		counts[n]++
		conn.Close()
	}
	if counts["a"] != 6 || counts["c"] != 2 {
		t.Errorf("clients after the reload went to %v, want a:6 c:2", counts)
	}
	if n, conn, _ := greet(t, s.Addrs("fe2")[0]); n != "c" {
		t.Errorf("fe2 greeting %q", n)
	} else {
		conn.Close()
	}
	bs := s.Backends("fe")
	if len(bs) != 2 || bs[0].Weight() != 3 || bs[0].Name() != a.addr.String() {
		t.Errorf("backends after the reload: %v", bs)
	}
	// The counters carry on: the first connection is still counted.
	after, _ := s.Counters("fe")
	if after.Total != counters.Total+8 || after.Active < 1 {
		t.Errorf("counters %d total, %d active; before the reload %d total", after.Total, after.Active, counters.Total)
	}
}

// TestReloadStrategyChange moves a frontend from roundrobin to maglev: new
// clients from one address all reach one backend, while a connection
// opened before keeps its backend.
func TestReloadStrategyChange(t *testing.T) {
	a, b := namedBackend(t, "a"), namedBackend(t, "b")
	build := func(strategy string) *config.Config {
		cfg, err := config.New().Workers(2).Frontend("fe").Listen("127.0.0.1:0").Strategy(strategy).
			Backend(a.addr.String(), 1).Backend(b.addr.String(), 1).Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	s := startServer(t, build(config.StrategyRoundRobin))
	addr := s.Addrs("fe")[0]
	seen := map[string]int{}
	for i := 0; i < 4; i++ {
		n, c, _ := greet(t, addr)
		seen[n]++
		c.Close()
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("roundrobin: %v", seen)
	}
	name, open, r := greet(t, addr)
	reload(t, s, build(config.StrategyMaglev))
	seen = map[string]int{}
	for i := 0; i < 6; i++ {
		n, c, _ := greet(t, addr)
		seen[n]++
		c.Close()
	}
	if len(seen) != 1 {
		t.Errorf("maglev sent one client address to %v", seen)
	}
	echoes(t, open, r, "kept on "+name)
}

// TestReloadRemovedFrontendDrains removes a frontend holding a connection:
// its address stops accepting at once, the connection relays on until
// shutdown_timeout, then is closed.
func TestReloadRemovedFrontendDrains(t *testing.T) {
	a := namedBackend(t, "a")
	const drain = 400 * time.Millisecond
	cfg1, err := config.New().Workers(2).ShutdownTimeout(drain).
		Frontend("keep").Listen("127.0.0.1:0").Backend(a.addr.String(), 1).
		Frontend("gone").Listen("127.0.0.1:0").Backend(a.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg1)
	gone := s.Addrs("gone")[0]
	_, open, r := greet(t, gone)
	cfg2, err := config.New().Workers(2).ShutdownTimeout(drain).
		Frontend("keep").Listen("127.0.0.1:0").Backend(a.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	ch := reload(t, s, cfg2)
	removedAt := time.Now()
	if !slices.Equal(ch.FrontendsRemoved, []string{"gone"}) || len(ch.ListenersClosed) != 1 {
		t.Errorf("change %+v", ch)
	}
	if c, err := net.DialTimeout("tcp", gone.String(), time.Second); err == nil {
		c.Close()
		t.Error("a removed frontend's address still accepts")
	}
	if s.Addrs("gone") != nil {
		t.Error("a removed frontend is still listed")
	}
	echoes(t, open, r, "draining")
	open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("read a byte nobody sent")
	}
	if d := time.Since(removedAt); d < drain-50*time.Millisecond || d > drain+2*time.Second {
		t.Errorf("connection closed %v after the reload, want about %v", d, drain)
	}
	if c, _ := s.Counters("keep"); c.Active != 0 {
		t.Errorf("the kept frontend counts %d active connections", c.Active)
	}
}

// TestReloadFailureChangesNothing prepares a config whose new address is
// taken: Prepare fails naming it, and the server serves on as before with
// no socket left behind.
func TestReloadFailureChangesNothing(t *testing.T) {
	a := namedBackend(t, "a")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg1 := testConfig(t, []netip.AddrPort{a.addr}, nil)
	s := startServer(t, cfg1)
	fds := openFDs(t)
	cfg2, err := config.New().Workers(2).Frontend("fe").Listen("127.0.0.1:0").Backend(a.addr.String(), 5).
		Frontend("new").Listen("127.0.0.1:0").Backend(a.addr.String(), 1).
		Frontend("clash").Listen(taken.Addr().String()).Backend(a.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(cfg2); err == nil || !strings.Contains(err.Error(), `frontend "clash": listen `+taken.Addr().String()) {
		t.Fatalf("Prepare: %v", err)
	}
	if n := openFDs(t); n != fds {
		t.Errorf("%d fds after the failed reload, %d before", n, fds)
	}
	if s.Backends("fe")[0].Weight() != 1 || s.Addrs("new") != nil {
		t.Error("a failed reload changed the server")
	}
	if n, c, _ := greet(t, s.Addrs("fe")[0]); n != "a" {
		t.Errorf("greeting %q", n)
	} else {
		c.Close()
	}
}

// TestReloadUDP moves a UDP frontend to a new generation: its flows live
// on. An address removed from it drains its flows until shutdown_timeout,
// then its socket closes.
func TestReloadUDP(t *testing.T) {
	back := startUDPBackend(t, taggedEcho('e')).addr
	const drain = 300 * time.Millisecond
	build := func(listen ...string) *config.Config {
		cfg, err := config.New().Workers(2).ShutdownTimeout(drain).Frontend("dns").Protocol(config.ProtocolUDP).
			Listen(listen...).IdleTimeout(time.Minute).Backend(back.String(), 1).Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	s := startServer(t, build("127.0.0.1:0", "127.0.0.2:0"))
	addrs := s.Addrs("dns")
	kept, dropped := udpClient(t, addrs[0]), udpClient(t, addrs[1])
	udpRoundTrip(t, kept, "one")
	udpRoundTrip(t, dropped, "two")
	ch := reload(t, s, build("127.0.0.1:0"))
	if len(ch.ListenersClosed) != 1 || !slices.Equal(ch.FrontendsChanged, []string{"dns"}) {
		t.Errorf("change %+v", ch)
	}
	udpRoundTrip(t, kept, "three")
	udpRoundTrip(t, dropped, "four") // its flow drains
	testutil.WaitFor(t, 5*time.Second, "the removed address's flows cut", func() bool {
		c, _ := s.Counters("dns")
		return c.Active == 1
	})
	udpRoundTrip(t, kept, "five")
}

// udpRoundTrip sends msg through c and expects the tagged echo back.
func udpRoundTrip(t testing.TB, c *net.UDPConn, msg string) {
	t.Helper()
	got, err := udpExchange(c, []byte(msg), 5*time.Second)
	if err != nil || string(got) != "e"+msg {
		t.Fatalf("round trip of %q: %q, %v", msg, got, err)
	}
}

// TestReloadStall reloads a 100-frontend config while probing the loops:
// it logs the longest loop task and probe round trip, the figures quoted
// in docs/operations.md.
func TestReloadStall(t *testing.T) {
	a, b := namedBackend(t, "a"), namedBackend(t, "b")
	build := func(frontends, weight int) *config.Config {
		bld := config.New().Workers(2)
		var fb *config.FrontendBuilder
		for i := 0; i < frontends; i++ {
			if fb == nil {
				fb = bld.Frontend(fmt.Sprintf("fe%03d", i))
			} else {
				fb = fb.Frontend(fmt.Sprintf("fe%03d", i))
			}
			fb = fb.Listen("127.0.0.1:0").Backend(a.addr.String(), weight).Backend(b.addr.String(), 1)
		}
		cfg, err := fb.Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	s := startServer(t, build(100, 1))
	// The same probes with no reload going on, for comparison.
	var idleProbe time.Duration
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		start := time.Now()
		if err := s.Probe(testCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		idleProbe = max(idleProbe, time.Since(start))
	}
	var worstTask, worstProbe time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		for ctx.Err() == nil {
			start := time.Now()
			if err := s.Probe(testCtx(t, 5*time.Second)); err != nil {
				t.Error(err)
				return
			}
			worstProbe = max(worstProbe, time.Since(start))
		}
	}()
	// Every frontend's weights change, ten frontends come and go.
	for i := 0; i < 4; i++ {
		ch := reload(t, s, build(100+10*(i%2), 1+i%3))
		worstTask = max(worstTask, ch.MaxLoopTask)
	}
	cancel()
	<-probed
	t.Logf("reload of 100 frontends: longest loop task %v, longest probe round trip %v (%v without reloads)",
		worstTask, worstProbe, idleProbe)
	if worstTask > 100*time.Millisecond {
		t.Errorf("a loop spent %v on one reload task", worstTask)
	}
}

// The reload report gives its loop task time in seconds, the unit in the
// name, as every duration splicer reports.
func TestChangeJSONInSeconds(t *testing.T) {
	b, err := json.Marshal(Change{FrontendsAdded: []string{"a"}, MaxLoopTask: 220 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"frontends_added":["a"],"max_loop_task_seconds":0.00022}`; string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
}
