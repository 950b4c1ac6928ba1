package l4

import (
	"io"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// With accept_proxy and send_proxy v2, the unique id TLV splicer sends
// on is the connection's id in the admin API's list, the header sent on
// names the carried client, and the connection log line names the
// carried client under the same id.
func TestProxyUniqueIDIsTheConnectionID(t *testing.T) {
	seen := make(chan seenHeader, 1)
	b := startBackend(t, headerEcho(seen))
	s := acceptServer(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.SendProxy(config.ProxyV2).SendProxyTLVs(config.ProxyTLVUniqueID)
	})
	client := carried("203.0.113.7:40001")
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(append(v2Header(client, carried("192.0.2.1:5432")), "ping"...)); err != nil {
		t.Fatal(err)
	}
	h := nextHeader(t, seen)
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	conns, _ := s.Connections("fe", 0, 10)
	if len(conns) != 1 {
		t.Fatalf("connection list %+v, want the one connection", conns)
	}
	id := conns[0].ID
	if got := string(h.UniqueID); got != strconv.FormatUint(id, 10) {
		t.Errorf("unique id TLV %q, want the connection id %d", got, id)
	}
	if h.Source != client {
		t.Errorf("header sent on names the client %v, want the carried %v", h.Source, client)
	}
	c.CloseWrite()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	lines := checkLogLines(t, s, CauseClientFIN, 1)
	if len(lines) != 1 {
		t.Fatalf("%d log lines", len(lines))
	}
	f := lines[0].fields
	if f["client"] != client.String() || f["connection_id"] != float64(id) {
		t.Errorf("log line names client %v, id %v; want the carried %v and id %d\n%s", f["client"], f["connection_id"], client, id, lines[0].text)
	}
}

// Clients that send part of a PROXY header and stall cost the loop no CPU
// while it waits for the rest: it sleeps in epoll until the header timeout
// cuts them (a loop that polled would burn a core for the whole second).
func TestAcceptProxyPartialHeaderSleeps(t *testing.T) {
	testutil.Exclusive(t, "cpu", time.Minute)
	b := startBackend(t, echo)
	const timeout = time.Second
	s := acceptServer(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.ProxyHeaderTimeout(timeout) })
	const n = 50
	hdr := v2Header(carried("203.0.113.7:40001"), carried("192.0.2.1:5432"))
	before := cpuTime(t)
	start := time.Now()
	for i := 0; i < n; i++ {
		c := dialFE(t, s)
		if _, err := c.Write(hdr[:len(hdr)/2]); err != nil {
			t.Fatal(err)
		}
	}
	waitCause(t, s, CauseProxyTimeout, n)
	used, took := cpuTime(t)-before, time.Since(start)
	t.Logf("%d stalled headers for %v: %v of CPU for the whole process", n, took, used)
	if took < timeout {
		t.Fatalf("the header timeout cut them after %v, before its %v", took, timeout)
	}
	if used > 250*time.Millisecond {
		t.Errorf("%v of CPU over %v while %d headers stalled: the loop does not sleep", used, took, n)
	}
	if b.accepted.Load() != 0 {
		t.Errorf("the backend accepted %d connections", b.accepted.Load())
	}
}
