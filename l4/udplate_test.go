package l4

import (
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// A loop that stalls past a flow's idle deadline finds the flow's timer
// due before the event of the reply that came meanwhile, within the idle
// time: the reply is relayed, not lost with the flow's socket (on a
// loaded machine, the loss of a reply the backend sent in time). The flow
// then ends at its idle timeout, its reply counted.
func TestUDPLateLoopKeepsAQueuedReply(t *testing.T) {
	const idle = 2 * time.Second
	release := make(chan struct{})
	b := startUDPBackend(t, func(p []byte) udpReply {
		<-release // the reply waits until the loop is stalled
		return udpReply{data: append([]byte{'A'}, p...)}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	cfg := buildConfig(t, config.New().Workers(1).Frontend("fe").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").
		HealthCheck(config.CheckNone).IdleTimeout(idle), []netip.AddrPort{b.addr}, nil)
	s := startServer(t, cfg)
	c := udpClient(t, s.Addrs("fe")[0])
	asked := time.Now()
	if _, err := c.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the query at the backend", func() bool { return b.received.Load() == 1 })
	// The loop sleeps past the idle deadline; the backend replies at the
	// start of the sleep, well within the idle time.
	stalled := make(chan struct{})
	s.loops[0].post(func(*loop) {
		close(stalled)
		time.Sleep(idle + time.Second)
	})
	<-stalled
	close(release)
	replied := time.Now()
	if replied.Sub(asked) >= idle {
		t.Fatalf("the backend replied %v after the query: not within the idle time %v", replied.Sub(asked), idle)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "Aq" {
		t.Fatalf("client got %q, %v; want the reply the backend sent %v after the query", buf[:max(n, 0)], err, replied.Sub(asked))
	}
	testutil.WaitFor(t, 10*time.Second, "the flow ended", func() bool { return counters(t, s).Active == 0 })
	fc := counters(t, s)
	if fc.Total != 1 || fc.DatagramsIn != 1 || fc.DatagramsOut != 1 || totalDrops(fc) != 0 || fc.Closed[CauseIdleTimeout] != 1 {
		t.Errorf("flows %d, datagrams in %d out %d, drops %v, causes:%s; want 1, 1, 1, none, idle_timeout=1",
			fc.Total, fc.DatagramsIn, fc.DatagramsOut, fc.Drops, causeCounts(fc.Closed))
	}
}
