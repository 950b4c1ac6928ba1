package l4

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestHandoffKeepsUDPFlows upgrades a UDP frontend the way the daemon does
// (Sockets, Inherit and Start in the new server, HandOff, Handoff): every
// open flow moves to the new server with its ID, backend and counters, the
// clients' next datagrams are answered by the same backend through it, and
// the old server is left with none.
func TestHandoffKeepsUDPFlows(t *testing.T) {
	b1 := startUDPBackend(t, taggedEcho('A'))
	b2 := startUDPBackend(t, taggedEcho('B'))
	backends := []netip.AddrPort{b1.addr, b2.addr}
	old := startServer(t, udpConfig(t, backends, nil))
	fe := old.Addrs("fe")[0]

	const clients = 8
	conns := make([]*net.UDPConn, clients)
	tags := make([]byte, clients)
	for i := range conns {
		conns[i] = udpClient(t, fe)
		got, err := udpExchange(conns[i], []byte(fmt.Sprintf("before %d", i)), 5*time.Second)
		if err != nil {
			t.Fatalf("client %d before the hand-over: %v", i, err)
		}
		tags[i] = got[0]
	}
	before, total := old.Connections("fe", 0, 100)
	if total != clients {
		t.Fatalf("the old server lists %d flows, want %d", total, clients)
	}

	socks, err := old.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	nu, err := NewServer(udpConfig(t, backends, nil), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	nu.ReserveIDs(old.NextID() + 1000)
	if err := nu.Inherit(socks); err != nil {
		t.Fatal(err)
	}
	if err := nu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nu.Close() })
	if got := nu.Addrs("fe")[0]; got != fe {
		t.Fatalf("the new server listens on %v, want the inherited %v", got, fe)
	}
	old.HandOff()
	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := old.Handoff(ctx, send)
	if st.Flows != clients || st.Lost != 0 || adopted().Flows != clients || adopted().Refused != 0 {
		t.Fatalf("handed %+v, adopted %+v; want all %d flows", st, adopted(), clients)
	}
	if c := counters(t, old); c.Active != 0 {
		t.Errorf("the old server still holds %d flows", c.Active)
	}

	after, total := nu.Connections("fe", 0, 100)
	if total != clients {
		t.Fatalf("the new server lists %d flows, want %d", total, clients)
	}
	type flow struct {
		client  netip.AddrPort
		backend string
		in, out uint64
	}
	byID := map[uint64]flow{}
	for _, c := range before {
		byID[c.ID] = flow{c.Client, c.Backend, c.BytesIn, c.BytesOut}
	}
	for _, c := range after {
		if want, ok := byID[c.ID]; !ok || want != (flow{c.Client, c.Backend, c.BytesIn, c.BytesOut}) {
			t.Errorf("adopted flow %d: %v %s in %d out %d; before the hand-over %+v (found %v)", c.ID, c.Client, c.Backend, c.BytesIn, c.BytesOut, want, ok)
		}
	}
	for i, c := range conns {
		msg := []byte(fmt.Sprintf("after %d", i))
		got, err := udpExchange(c, msg, 5*time.Second)
		if err != nil || string(got[1:]) != string(msg) {
			t.Fatalf("client %d after the hand-over: %q, %v", i, got, err)
		}
		if got[0] != tags[i] {
			t.Errorf("client %d moved from backend %c to %c across the hand-over", i, tags[i], got[0])
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the new server counting the replies", func() bool { return counters(t, nu).DatagramsOut == clients })
	if c := counters(t, nu); c.Total != 0 || c.Active != clients || c.DatagramsIn != clients {
		t.Errorf("new server: flows opened %d, active %d, datagrams in %d; want 0 opened (all adopted), %d active, %d in",
			c.Total, c.Active, c.DatagramsIn, clients, clients)
	}
}
