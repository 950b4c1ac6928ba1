package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// The inspection calls answer for what exists: an unknown frontend is
// unknown to each, a server not started has no connection, no loop to
// probe or stall, and the listing of one frontend leaves out the flows of
// another.
func TestInspectUnknownAndNotStarted(t *testing.T) {
	b := startBackend(t, echo)
	u := startUDPBackend(t, taggedEcho('d'))
	cfg := buildConfig(t, config.New().Workers(2).ConnectionsBuffer(testLogBuffer).
		Frontend("fe").Listen("127.0.0.1:0").Backend(b.addr.String(), 1).
		Frontend("dns").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").HealthCheck(config.CheckNone),
		[]netip.AddrPort{u.addr}, nil)
	s, err := NewServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if list, total := s.Connections("", 0, 10); len(list) != 0 || total != 0 {
		t.Errorf("connections of a server not started: %v (%d)", list, total)
	}
	if err := s.Probe(context.Background()); err != nil {
		t.Errorf("Probe of a server not started: %v", err)
	}
	if err := s.Stall(0, time.Millisecond); err == nil || err.Error() != "l4: no event loop 0 (there are 0)" {
		t.Errorf("Stall of a server not started: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Stall(2, time.Millisecond); err == nil || err.Error() != "l4: no event loop 2 (there are 2)" {
		t.Errorf("Stall(2): %v", err)
	}
	if _, ok := s.Counters("none"); ok {
		t.Error("counters of an unknown frontend")
	}
	if got := s.Backends("none"); got != nil {
		t.Errorf("backends of an unknown frontend: %v", got)
	}
	be, _ := backend.New(backend.Spec{Address: b.addr, Weight: 1})
	if n, err := s.CloseBackendConnections("none", be); n != 0 || !errors.Is(err, ErrUnknownFrontend) {
		t.Errorf("CloseBackendConnections of an unknown frontend: %d, %v", n, err)
	}

	// A connection on "fe" and a flow on "dns": each listing has its own.
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("x"))
	c.Read(make([]byte, 1))
	d := udpClient(t, s.Addrs("dns")[0])
	if _, err := udpExchange(d, []byte("q"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	tcpList, tcpTotal := s.Connections("fe", 0, 10)
	udpList, udpTotal := s.Connections("dns", 0, 10)
	if tcpTotal != 1 || len(tcpList) != 1 || tcpList[0].State != "relaying" || tcpList[0].Client != addrOf(c) {
		t.Errorf("fe lists %+v (%d)", tcpList, tcpTotal)
	}
	if udpTotal != 1 || len(udpList) != 1 || udpList[0].State != "flow" || udpList[0].Client != addrOf(d) {
		t.Errorf("dns lists %+v (%d)", udpList, udpTotal)
	}
	if _, all := s.Connections("", 0, 10); all != 2 {
		t.Errorf("all frontends list %d, want 2", all)
	}
}

// responses = 0 applies the checks of a new flow to every datagram: one
// from a client the access list refuses, or with no backend able to take
// it, is dropped and counted under its reason, and nothing is sent.
func TestUDPResponsesZeroRefusals(t *testing.T) {
	b := startUDPBackend(t, func([]byte) udpReply { return udpReply{} })
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.Responses(0).Deny("127.0.0.2/32")
	}))
	fe := s.Addrs("fe")[0]
	denied, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.UDPAddrFromAddrPort(fe))
	if err != nil {
		t.Fatal(err)
	}
	defer denied.Close()
	denied.Write([]byte("denied"))
	testutil.WaitFor(t, 5*time.Second, "the denied datagram dropped", func() bool { return counters(t, s).Drops[DropAccessList] == 1 })

	s.Backends("fe")[0].SetState(backend.Maint)
	c := udpClient(t, fe)
	c.Write([]byte("nowhere"))
	testutil.WaitFor(t, 5*time.Second, "the datagram with no backend dropped", func() bool { return counters(t, s).Drops[DropNoBackend] == 1 })
	if got := counters(t, s); got.DatagramsIn != 0 || got.Total != 0 || b.received.Load() != 0 {
		t.Errorf("datagrams in %d, total %d, at the backend %d; want none", got.DatagramsIn, got.Total, b.received.Load())
	}
}

// An address a reload removed, then a second reload restored within the
// drain, keeps its socket and its flows: the end of the first drain no
// longer closes it.
func TestReloadRestoresADrainingAddress(t *testing.T) {
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
	second := udpClient(t, addrs[1])
	udpRoundTrip(t, second, "one")
	start := time.Now()
	reload(t, s, build("127.0.0.1:0"))
	if ch := reload(t, s, build("127.0.0.1:0", "127.0.0.2:0")); len(ch.ListenersOpened) != 0 {
		t.Errorf("the restored address was bound anew: %+v", ch)
	}
	// Past the first drain: the socket and the flow are still there.
	testutil.WaitFor(t, 5*time.Second, "the first drain over", func() bool { return time.Since(start) > 2*drain })
	udpRoundTrip(t, second, "two")
	if c, _ := s.Counters("dns"); c.Active != 1 || c.Total != 1 {
		t.Errorf("%d flows (%d in all), want the first still open", c.Active, c.Total)
	}
	if got := s.Addrs("dns"); len(got) != 2 || got[1] != addrs[1] {
		t.Errorf("addresses %v, want %v", got, addrs)
	}
}

// Probe names the loops that do not answer in time (one Stall holds up),
// and answers nil again once they run.
func TestProbeNamesAStuckLoop(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	const stall = 2 * time.Second
	if err := s.Stall(1, stall); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// Loop 0 answers, unless the machine is so loaded that it did not
	// run within the 200 ms either.
	err := s.Probe(ctx)
	if msg := fmt.Sprint(err); !errors.Is(err, context.DeadlineExceeded) ||
		msg != "event loops [1] have not answered: context deadline exceeded" && msg != "event loops [0 1] have not answered: context deadline exceeded" {
		t.Errorf("Probe during the stall: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := s.Probe(ctx2); err != nil {
		t.Errorf("Probe after the stall: %v", err)
	}
}
