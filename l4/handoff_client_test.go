package l4

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

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
// back. The relayed connection beside it goes over as a relayed one; both
// keep their IDs, and the per-client counts move with them: the old
// process forgets them, the new one counts them (an adopted connection is
// never refused by max_connections_per_client, but it fills the count).
func TestHandoffQueuedClient(t *testing.T) {
	b := startBackend(t, greeter)
	cfg := func(backendCap, perClient int) *config.Config {
		return testConfig(t, nil, func(fb *config.FrontendBuilder) {
			fb.Backend(b.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: backendCap}).
				QueueTimeout(30 * time.Second).MaxConnectionsPerClient(perClient)
		})
	}
	old, nu := startServer(t, cfg(1, 2)), startServer(t, cfg(2, 1))
	nu.ReserveIDs(old.NextID() + 1000)

	relayed := dialFE(t, old)
	relayed.SetDeadline(time.Now().Add(10 * time.Second))
	rr := bufio.NewReader(relayed)
	if !greeted(relayed, rr, 5*time.Second) {
		t.Fatal("first client not relayed")
	}
	relayedID := waitState(t, old, "relaying", 0)
	queued := dialFE(t, old)
	queued.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := queued.Write([]byte("sent while queued\n")); err != nil {
		t.Fatal(err)
	}
	queuedID := waitState(t, old, "queued", 1)
	if fc, _ := old.Counters("fe"); fc.QueuedNow != 1 {
		t.Fatalf("queued now %d on the old server, want 1", fc.QueuedNow)
	}

	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := old.Handoff(ctx, send)
	if st.TCP != 1 || st.Clients != 1 || st.Left != 0 || st.Lost != 0 ||
		adopted().TCP != 1 || adopted().Clients != 1 || adopted().Refused != 0 {
		t.Fatalf("handed %+v, adopted %+v; want the relayed connection and the queued client", st, adopted())
	}
	if fc, _ := old.Counters("fe"); fc.QueuedNow != 0 || old.ActiveConnections() != 0 {
		t.Errorf("the old server still holds %d connections, %d queued", old.ActiveConnections(), fc.QueuedNow)
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
	echoes(t, relayed, rr, "relayed on")
	if got := stateOf(nu, queuedID); got != "relaying" {
		t.Errorf("the adopted client %d is %q on the new server, want relaying under its old ID", queuedID, got)
	}
	if got := stateOf(nu, relayedID); got != "relaying" {
		t.Errorf("the adopted connection %d is %q on the new server", relayedID, got)
	}

	// The new server counts both adopted connections against
	// max_connections_per_client = 1: a third client from 127.0.0.1 is
	// refused there. The old server forgot them: it takes two more.
	if err := dialAndRead(nu.Addrs("fe")[0].String()); err != nil && !errors.Is(err, errConnReset) {
		t.Fatalf("third client of the new server: %v", err)
	}
	waitCause(t, nu, CauseClientLimit, 1)
	c1, c2 := dialFE(t, old), dialFE(t, old)
	c2r := bufio.NewReader(c2)
	if !greeted(c1, bufio.NewReader(c1), 5*time.Second) {
		t.Fatal("the old server refuses a client after handing over its per-client count")
	}
	c2.Write([]byte("x"))
	testutil.WaitFor(t, 5*time.Second, "the second new client of the old server queued", func() bool {
		fc, _ := old.Counters("fe")
		return fc.QueuedNow == 1
	})
	if fc, _ := old.Counters("fe"); fc.PerClient != 0 {
		t.Errorf("the old server refused %d clients for max_connections_per_client", fc.PerClient)
	}
	c1.Close()
	if !greeted(c2, c2r, 5*time.Second) {
		t.Fatal("the old server's queued client was not served")
	}
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
