package l4

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// stateOf returns the state of connection id of frontend "fe" of s, ""
// when s does not list it.
func stateOf(s *Server, id uint64) string {
	list, _ := s.Connections("fe", 0, 100)
	for _, c := range list {
		if c.ID == id {
			return c.State
		}
	}
	return ""
}

// waitState waits for s to list exactly one connection of frontend "fe" in
// state and returns its ID.
func waitState(t *testing.T, s *Server, state string, others int) uint64 {
	t.Helper()
	var id uint64
	testutil.WaitFor(t, 5*time.Second, "a connection "+state, func() bool {
		list, _ := s.Connections("fe", 0, 100)
		n := 0
		for _, c := range list {
			if c.State == state {
				id = c.ID
				n++
			}
		}
		return n == 1 && len(list) == others+1
	})
	return id
}

// A client still queued for a backend slot at the upgrade is handed over
// as a client (its socket alone, what it sent still in it): the new
// process picks a backend for it, and its bytes reach the backend and come
// back. It keeps its ID, and its per-client count moves with it: the old
// process forgets it, the new one counts it (an adopted connection is
// never refused by max_connections_per_client, but it fills the count).
// The connection holding the backend's one slot has bytes its client does
// not read, so it stays with the old process: the slot is never freed
// during the hand-over, and the client stays queued until it goes.
func TestHandoffQueuedClient(t *testing.T) {
	flood := randomBlock(16<<20, 9)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "flood\n" {
			c.Write(flood)
			io.Copy(io.Discard, r)
			return
		}
		io.WriteString(c, "hi\n"+line)
		io.Copy(c, r)
	})
	cfg := func(backendCap, perClient int) *config.Config {
		return testConfig(t, nil, func(fb *config.FrontendBuilder) {
			fb.Backend(b.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: backendCap}).
				QueueTimeout(30 * time.Second).MaxConnectionsPerClient(perClient)
		})
	}
	old, nu := startServer(t, cfg(1, 2)), startServer(t, cfg(2, 1))
	nu.ReserveIDs(old.NextID() + 1000)

	holder := dialFE(t, old)
	if _, err := holder.Write([]byte("flood\n")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, old)
	queued := dialFE(t, old)
	queued.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := queued.Write([]byte("sent while queued\n")); err != nil {
		t.Fatal(err)
	}
	queuedID := waitState(t, old, "queued", 1)

	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	st := old.Handoff(ctx, send)
	if st != (HandoffStats{Clients: 1, Left: 1}) || adopted() != (HandoffStats{Clients: 1}) {
		t.Fatalf("handed %+v, adopted %+v; want the queued client, and the slot holder left", st, adopted())
	}
	if fc, _ := old.Counters("fe"); fc.QueuedNow != 0 || old.ActiveConnections() != 1 {
		t.Errorf("the old server holds %d connections, %d queued; want the slot holder alone", old.ActiveConnections(), fc.QueuedNow)
	}

	// The queued client is served by the new server: the backend greets
	// it, and echoes what it had sent before the hand-over.
	qr := bufio.NewReader(queued)
	if !greeted(queued, qr, 5*time.Second) {
		t.Fatal("the handed-over client was not connected to the backend")
	}
	if line, err := qr.ReadString('\n'); err != nil || line != "sent while queued\n" {
		t.Fatalf("echo of the bytes sent while queued: %q, %v", line, err)
	}
	if got := stateOf(nu, queuedID); got != "relaying" {
		t.Errorf("the adopted client %d is %q on the new server, want relaying under its old ID", queuedID, got)
	}

	// The new server counts the adopted client against
	// max_connections_per_client = 1: another client from 127.0.0.1 is
	// refused there. The old server forgot it: with the slot holder it
	// counts one of its two, and takes another (which queues).
	if err := dialAndRead(nu.Addrs("fe")[0].String()); err != nil && !errors.Is(err, errConnReset) {
		t.Fatalf("second client of the new server: %v", err)
	}
	waitCause(t, nu, CauseClientLimit, 1)
	dialFE(t, old).Write([]byte("x\n"))
	testutil.WaitFor(t, 5*time.Second, "the old server's new client queued", func() bool {
		fc, _ := old.Counters("fe")
		return fc.QueuedNow == 1
	})
	if fc, _ := old.Counters("fe"); fc.PerClient != 0 {
		t.Errorf("the old server refused %d clients for max_connections_per_client", fc.PerClient)
	}
	holder.Close()
}

// A client whose backend connect is still under way at the upgrade is
// handed over as a client: the old process drops its half-open backend
// socket, and the new one connects it afresh to a backend of its own
// config, without the client losing what it sent. The line the new
// process logs at the end carries the ID and the address the client came
// to.
func TestHandoffConnectingClient(t *testing.T) {
	hole := blackhole(t)
	b := startBackend(t, echo)
	old := startServer(t, testConfig(t, []netip.AddrPort{hole}, func(fb *config.FrontendBuilder) {
		fb.ConnectTimeout(30 * time.Second)
	}))
	nu := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	nu.ReserveIDs(old.NextID() + 1000)

	c := dialFE(t, old)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	id := waitState(t, old, "connecting", 0)

	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st := old.Handoff(ctx, send); st.Clients != 1 || st.TCP != 0 || adopted().Clients != 1 {
		t.Fatalf("handed %+v, adopted %+v; want one client", st, adopted())
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo through the new server: %q, %v", buf, err)
	}
	c.CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	f := lastLine(t, nu, CauseClientFIN)
	if f["connection_id"] != float64(id) || f["listen"] != old.Addrs("fe")[0].String() ||
		f["backend"] != b.addr.String() || f["bytes_in"] != 5.0 || f["bytes_out"] != 5.0 {
		t.Errorf("the new server's line for the adopted client: %v", f)
	}
	if n, _ := captured(old).withCause(CauseClientFIN); n != 0 {
		t.Errorf("the old server logged %d lines for a client it handed over", n)
	}
}

// A UDP frontend on a wildcard address hands its flows over with the local
// address each client wrote to: the new server replies from that address
// (a connected client takes no other), and counts the flows against
// max_connections_per_client, so a third flow from the same address is
// refused there.
func TestHandoffUDPWildcardFlows(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('w'))
	cfg := func() *config.Config {
		return buildConfig(t, config.New().Workers(1).ConnectionsBuffer(testLogBuffer).Frontend("fe").Protocol(config.ProtocolUDP).
			Listen("0.0.0.0:0").HealthCheck(config.CheckNone).LogConnections(config.LogAll).MaxConnectionsPerClient(2),
			[]netip.AddrPort{b.addr}, nil)
	}
	old := startServer(t, cfg())
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), old.Addrs("fe")[0].Port())
	clients := []*net.UDPConn{udpClient(t, to), udpClient(t, to)}
	for i, c := range clients {
		if _, err := udpExchange(c, []byte("before"), 5*time.Second); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	socks, err := old.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	nu, err := NewServer(cfg(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	capture(nu)
	t.Cleanup(func() { captures.Delete(nu) })
	nu.ReserveIDs(old.NextID() + 1000)
	if err := nu.Inherit(socks); err != nil {
		t.Fatal(err)
	}
	if err := nu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nu.Close() })
	old.HandOff()
	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st := old.Handoff(ctx, send); st.Flows != 2 || adopted().Flows != 2 || adopted().Refused != 0 {
		t.Fatalf("handed %+v, adopted %+v; want both flows", st, adopted())
	}
	for i, c := range clients {
		if got, err := udpExchange(c, []byte("after"), 5*time.Second); err != nil || string(got) != "wafter" {
			t.Errorf("client %d after the hand-over: %q, %v", i, got, err)
		}
	}
	third := udpClient(t, to)
	third.Write([]byte("third"))
	testutil.WaitFor(t, 5*time.Second, "the third flow refused", func() bool { return counters(t, nu).Drops[DropPerClient] == 1 })
	if c := counters(t, nu); c.Active != 2 {
		t.Errorf("%d flows on the new server, want the 2 adopted", c.Active)
	}
}

// A record from an older process, without the address its client came to
// or the connect time, is adopted all the same: the connection relays on,
// and its log line names an address of the frontend instead.
func TestAdoptOlderRecord(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	// The two sockets of a relayed connection, made by hand: the
	// client's, accepted from a listener of the test's, and one
	// connected to the backend.
	lfd, laddr := testutil.ListenRaw(t, 16, 0)
	c, err := net.DialTimeout("tcp", laddr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := net.DialTimeout("tcp", b.addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f, err := bc.(*net.TCPConn).File()
	bc.Close()
	if err != nil {
		t.Fatal(err)
	}
	bfd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(bfd, true)
	be := s.Backends("fe")[0]
	now := time.Now().UnixNano()
	rec := HandoffRecord{
		V: HandoffVersion, Kind: HandoffTCP, ID: 77, Frontend: "fe", Client: addrOf(c).String(),
		Backend: be.Name(), BackendAddr: be.Address().String(), Start: now, LastActive: now, FDs: 2,
	}
	if st := s.Adopt([]HandoffRecord{rec}, []int{cfd, bfd}); st != (HandoffStats{TCP: 1}) {
		t.Fatalf("adopted %+v, want the connection", st)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, n, err := exchange(c.(*net.TCPConn), []byte("older")); err != nil || n != 5 {
		t.Fatalf("through the adopted connection: %d bytes, %v", n, err)
	}
	f2 := lastLine(t, s, CauseClientFIN)
	if f2["connection_id"] != 77.0 || f2["listen"] != s.Addrs("fe")[0].String() || f2["connect_seconds"] != 0.0 {
		t.Errorf("line %v; want id 77, the frontend's address, no connect time", f2)
	}
}
