package daemon

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// udpEcho runs a UDP echo server on loopback until the test ends.
func udpEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				c.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// askUDP sends msg from a new socket to front and reports whether the
// echo came back within wait.
func askUDP(t *testing.T, front netip.AddrPort, msg string, wait time.Duration) bool {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(front))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == msg
}

// deadBackendTakenOut sends new flows to front until passive detection
// marks bad down, then checks that 10 more new flows all get their echo
// from a live backend and none reaches bad. It returns bad's refusals.
func deadBackendTakenOut(t *testing.T, front netip.AddrPort, bad *backend.Backend) uint64 {
	t.Helper()
	for i := 0; i < 20 && bad.Healthy(); i++ {
		askUDP(t, front, "hello", 300*time.Millisecond)
	}
	testutil.WaitFor(t, 10*time.Second, "dead backend marked down", func() bool { return !bad.Healthy() })
	refused := bad.Stats().Failures[backend.FailRefused]
	for i := 0; i < 10; i++ {
		if !askUDP(t, front, "after", 5*time.Second) {
			t.Fatalf("client %d after the dead backend went down got no echo", i)
		}
	}
	if got := bad.Stats().Failures[backend.FailRefused]; got != refused {
		t.Errorf("the down backend was sent new flows: refused %d, then %d", refused, got)
	}
	return refused
}

// TestUDPPassiveFallTakesDeadBackendOut runs a UDP frontend with a dead
// backend beside a live one: the ICMP errors the dead one causes are
// passive failures, and after passive_fall of them it is down and every
// new flow reaches the live backend. The stats report it all.
func TestUDPPassiveFallTakesDeadBackendOut(t *testing.T) {
	live := udpEcho(t)
	dead := testutil.RefusedAddr(t, "udp")
	// The probe is a send_expect over UDP; a day-long interval keeps
	// active probes out of the count after the first. A short idle
	// timeout lets the flows end before the shutdown at cleanup.
	cfg, err := config.New().AdminListen("").Frontend("t").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").
		IdleTimeout(time.Second).
		Backend(dead.String(), 1).Backend(live.String(), 1).
		HealthCheck(config.CheckSendExpect).HealthSend("ping").HealthExpect("ping").
		HealthInterval(24 * time.Hour).HealthPassiveFall(2).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := netip.MustParseAddrPort(frontAddr(t, d))
	bad := d.srv.Backends("t")[0]
	refused := deadBackendTakenOut(t, front, bad)

	src := &source{d: d}
	var fe stats.FrontendStats
	testutil.WaitFor(t, 10*time.Second, "the echoes' flows counted", func() bool {
		fe = src.Stats().Frontends[0]
		return fe.DatagramsOut >= 10
	})
	if fe.Protocol != config.ProtocolUDP || fe.Drops["refused"] != refused || len(fe.Drops) != len(stats.DropReasons()) {
		t.Errorf("frontend protocol %q, drops %v; want udp, refused = %d, every reason present", fe.Protocol, fe.Drops, refused)
	}
	be := fe.Backends[0]
	if be.Health.Up || be.ConnectFailures["refused"] != refused || be.DatagramsIn != refused {
		t.Errorf("dead backend: up %v, refused %d, datagrams in %d; want down, %d, %d",
			be.Health.Up, be.ConnectFailures["refused"], be.DatagramsIn, refused, refused)
	}
}

// The data plane's drop reasons are the ones the stats declare, in order.
func TestDropReasonNamesMatchStats(t *testing.T) {
	var names []string
	for r := 0; r < l4.NumDropReasons; r++ {
		names = append(names, l4.DropReason(r).String())
	}
	if want := stats.DropReasons(); !slices.Equal(names, want) {
		t.Errorf("l4 drop reasons %v, stats declares %v", names, want)
	}
}

// With no active check (the UDP default) passive detection still takes a
// dead backend out: the data plane's ICMP errors mark it down, and new
// flows go to the live one until down_interval puts it back on trial.
func TestUDPPassiveOnlyByDefault(t *testing.T) {
	live := udpEcho(t)
	dead := testutil.RefusedAddr(t, "udp")
	cfg, err := config.New().AdminListen("").Frontend("t").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").
		IdleTimeout(time.Second).Backend(dead.String(), 1).Backend(live.String(), 1).
		HealthPassiveFall(2).HealthDownInterval(time.Hour).Build()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Frontends[0].Health.Check != config.CheckNone {
		t.Fatalf("default UDP check %q, want none", cfg.Frontends[0].Health.Check)
	}
	d := runDaemon(t, cfg)
	front := netip.MustParseAddrPort(frontAddr(t, d))
	bad := d.srv.Backends("t")[0]
	deadBackendTakenOut(t, front, bad)
	st, _ := d.checks.scheduler("t").State(bad)
	if st.Up || st.Last.Msg != "passive: connect refused" {
		t.Errorf("health state %+v, want down by passive refusals", st)
	}
}
