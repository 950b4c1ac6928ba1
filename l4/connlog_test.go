package l4

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// testLogBuffer is the connection log ring of test servers: room for every
// line a test makes, so that waitCause can count them exactly.
const testLogBuffer = 1 << 12

// logCapture is a connection log destination in memory. It counts the
// lines of each cause and keeps the first keepLines of each.
type logCapture struct {
	mu     sync.Mutex
	counts map[string]int
	lines  []logLine
	bad    []string // lines that are not JSON objects
}

// keepLines bounds the lines a logCapture keeps per cause, so that a load
// test's log does not take its memory.
const keepLines = 500

// logLine is one parsed line, with its text.
type logLine struct {
	text   string
	fields map[string]any
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	for _, line := range bytes.SplitAfter(p, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		// Only the kept lines are parsed: a load test logs many.
		cause := ""
		if _, rest, ok := bytes.Cut(line, []byte(`"cause":"`)); ok {
			if end := bytes.IndexByte(rest, '"'); end >= 0 {
				cause = string(rest[:end])
			}
		}
		c.counts[cause]++
		if c.counts[cause] > keepLines {
			continue
		}
		var m map[string]any
		if line[len(line)-1] != '\n' || json.Unmarshal(line, &m) != nil {
			c.bad = append(c.bad, string(line))
			continue
		}
		c.lines = append(c.lines, logLine{text: string(line), fields: m})
	}
	return len(p), nil
}

// withCause returns how many lines of cause came, and those kept.
func (c *logCapture) withCause(cause Cause) (int, []logLine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []logLine
	for _, l := range c.lines {
		if l.fields["cause"] == cause.String() {
			out = append(out, l)
		}
	}
	return c.counts[cause.String()], out
}

// captures holds each test server's connection log capture, by server: the
// server lets go of its output when it stops.
var captures sync.Map // *Server -> *logCapture

// capture gives s a connection log capture.
func capture(s *Server) {
	c := &logCapture{}
	captures.Store(s, c)
	s.SetLogOutput(LogOutput{W: c})
}

// captured returns the connection log capture of a test server.
func captured(s *Server) *logCapture {
	if c, ok := captures.Load(s); ok {
		return c.(*logCapture)
	}
	return nil
}

// checkLogLines waits for the connection log of s to hold want lines of
// cause, and checks the fields every line must have.
func checkLogLines(t testing.TB, s *Server, cause Cause, want uint64) []logLine {
	t.Helper()
	c := captured(s)
	if c == nil {
		t.Fatal("the server has no connection log capture")
	}
	var (
		n     int
		lines []logLine
	)
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("%d connection log lines of %v", want, cause), func() bool {
		n, lines = c.withCause(cause)
		return uint64(n) >= want
	})
	if uint64(n) != want {
		t.Errorf("%d connection log lines of %v, want %d", n, cause, want)
	}
	if n := s.ConnLogCounters().DroppedFull; n != 0 {
		t.Errorf("%d connection log lines dropped", n)
	}
	c.mu.Lock()
	bad := slices.Clone(c.bad)
	c.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("lines that are not JSON objects: %q", bad)
	}
	for _, l := range lines {
		if err := checkLogFields(s, l.fields); err != nil {
			t.Errorf("%v\n%s", err, l.text)
		}
	}
	return lines
}

// handedAddrs holds, per test server that adopted connections, the
// addresses of the server they came from: in a test the two do not share
// listening sockets as they do at an upgrade, and a connection's line
// names the address its client came to.
var handedAddrs sync.Map // *Server -> []netip.AddrPort

// handedFrom returns the addresses s adopted connections from.
func handedFrom(s *Server) []netip.AddrPort {
	if v, ok := handedAddrs.Load(s); ok {
		return v.([]netip.AddrPort)
	}
	return nil
}

var logTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// checkLogFields checks one line of frontend "fe" of s: the fields every
// line has, and those its protocol and cause call for.
func checkLogFields(s *Server, f map[string]any) error {
	cause, _ := f["cause"].(string)
	str := func(k string) string { v, _ := f[k].(string); return v }
	num := func(k string) (float64, bool) { v, ok := f[k].(float64); return v, ok }
	switch {
	case f["level"] != "info" || f["component"] != "connlog":
		return fmt.Errorf("level %v, component %v", f["level"], f["component"])
	case !logTimeRE.MatchString(str("time")):
		return fmt.Errorf("time %q is not RFC 3339 with milliseconds in UTC", str("time"))
	case f["frontend"] != "fe":
		return fmt.Errorf("frontend %v", f["frontend"])
	}
	if id, ok := num("connection_id"); !ok || id < 1 {
		return fmt.Errorf("connection_id %v", f["connection_id"])
	}
	if _, err := netip.ParseAddrPort(str("client")); err != nil {
		return fmt.Errorf("client: %v", err)
	}
	listen, err := netip.ParseAddrPort(str("listen"))
	addrs := append(s.Addrs("fe"), handedFrom(s)...)
	if err != nil || !slices.Contains(addrs, listen) {
		return fmt.Errorf("listen %q is not one of the frontend's addresses %v", str("listen"), addrs)
	}
	for _, k := range []string{"duration_seconds", "bytes_in", "bytes_out"} {
		if v, ok := num(k); !ok || v < 0 {
			return fmt.Errorf("%s = %v", k, f[k])
		}
	}
	udp := f["protocol"] == "udp"
	var c Cause
	for i := 1; i < NumCauses; i++ {
		if Cause(i).String() == cause {
			c = Cause(i)
		}
	}
	if c == CauseNone {
		return fmt.Errorf("cause %q is not a cause", cause)
	}
	// A clean end is an error line too when it was slow (log_slow).
	if e, ok := f["error"].(bool); !ok || !e && !c.Clean() && !udp {
		return fmt.Errorf("error = %v for cause %v", f["error"], cause)
	}
	hasBackend := str("backend") != ""
	if hasBackend {
		if _, err := netip.ParseAddrPort(str("backend_address")); err != nil {
			return fmt.Errorf("backend_address: %v", err)
		}
	}
	if udp {
		if f["protocol"] != "udp" || !hasBackend && c != CauseHandoverRefused {
			return fmt.Errorf("a flow line without its backend")
		}
		for _, k := range []string{"datagrams_in", "datagrams_out", "reply_seconds"} {
			if _, ok := num(k); !ok {
				return fmt.Errorf("no %s", k)
			}
		}
		return nil
	}
	if f["protocol"] != "tcp" {
		return fmt.Errorf("protocol %v", f["protocol"])
	}
	tries, ok := f["tries"].([]any)
	if !ok {
		return fmt.Errorf("tries %v", f["tries"])
	}
	connected := 0
	for _, x := range tries {
		try, _ := x.(map[string]any)
		if try["backend"] == "" || try["result"] == "" || try["result"] == "pending" && !anytime(c) {
			return fmt.Errorf("try %v", x)
		}
		if try["result"] == "connected" {
			connected++
		}
	}
	queue, _ := num("queue_seconds")
	connect, _ := num("connect_seconds")
	total, _ := num("duration_seconds")
	// The three are logged rounded to the microsecond, each within half a
	// microsecond of its exact value, so the rounded queue and connect add
	// up to at most the rounded duration plus one microsecond. Compared in
	// whole microseconds: in float64 seconds the sum of two rounded values
	// can come out a hair above the bound it meets exactly.
	us := func(sec float64) int64 { return int64(math.Round(sec * 1e6)) }
	if queue < 0 || connect < 0 || us(queue)+us(connect) > us(total)+1 {
		return fmt.Errorf("queue %v + connect %v > duration %v", queue, connect, total)
	}
	switch c {
	case CauseDenied, CauseClientLimit, CauseRateLimit, CauseNoBackend, CauseQueueFull, CauseQueueTimeout,
		CauseProxyInvalid, CauseProxyTimeout, CauseProxyUntrusted, CauseHandoverRefused:
		// A handed-over connection this process refused never had a
		// backend here.
		if len(tries) != 0 || hasBackend {
			return fmt.Errorf("a client refused before any try has tries %v, backend %q", tries, str("backend"))
		}
		if c == CauseQueueTimeout && queue <= 0 {
			return fmt.Errorf("queue_timeout with queue_seconds %v", queue)
		}
	case CauseConnectFailed:
		if len(tries) == 0 || connected != 0 || hasBackend {
			return fmt.Errorf("connect_failed with tries %v, backend %q", tries, str("backend"))
		}
	case CauseClientReset, CauseAdminKill, CauseBackendDown, CauseShutdown, CauseLocalError:
		// Before a backend was connected, or after (see anytime).
		if hasBackend != (connected == 1) {
			return fmt.Errorf("%v: backend %q, tries %v", c, str("backend"), tries)
		}
	default:
		if len(tries) == 0 {
			// Only a client that left before its PROXY header, with
			// nothing sent, ends cleanly without a try.
			if c == CauseClientFIN && !hasBackend {
				return nil
			}
			return fmt.Errorf("%v without a try", c)
		}
		last, _ := tries[len(tries)-1].(map[string]any)
		if !hasBackend || connected != 1 || last["result"] != "connected" || last["backend"] != str("backend") {
			return fmt.Errorf("a relayed connection's line: backend %q, tries %v", str("backend"), tries)
		}
	}
	return nil
}

// anytime reports whether a connection can end with c while it waits for
// a backend (queued, connecting, starved) as well as while relaying.
func anytime(c Cause) bool {
	switch c {
	case CauseClientReset, CauseAdminKill, CauseBackendDown, CauseShutdown, CauseLocalError:
		return true
	}
	return false
}

// lastLine waits for the connection log of s to hold a line of cause and
// returns the first one.
func lastLine(t *testing.T, s *Server, cause Cause) map[string]any {
	t.Helper()
	return checkLogLines(t, s, cause, 1)[0].fields
}

// The fields of a relayed connection, a failed one and a queued one, value
// by value.
func TestConnLogFields(t *testing.T) {
	t.Run("relayed", func(t *testing.T) {
		b := startBackend(t, echo)
		s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, n, err := exchange(c, []byte("hello, splicer")); err != nil || n != 14 {
			t.Fatalf("exchange: %d bytes, %v", n, err)
		}
		client := c.LocalAddr().(*net.TCPAddr).AddrPort().String()
		f := lastLine(t, s, CauseClientFIN)
		want := map[string]any{
			"client": client, "listen": s.Addrs("fe")[0].String(), "protocol": "tcp",
			"backend": b.addr.String(), "backend_address": b.addr.String(),
			"bytes_in": 14.0, "bytes_out": 14.0, "error": false, "message": "connection closed",
			"queue_seconds": 0.0,
		}
		for k, v := range want {
			if f[k] != v {
				t.Errorf("%s = %v, want %v", k, f[k], v)
			}
		}
		tries := f["tries"].([]any)
		if len(tries) != 1 || tries[0].(map[string]any)["result"] != "connected" {
			t.Errorf("tries %v", tries)
		}
		if f["connect_seconds"].(float64) <= 0 || f["duration_seconds"].(float64) < f["connect_seconds"].(float64) {
			t.Errorf("connect_seconds %v, duration_seconds %v", f["connect_seconds"], f["duration_seconds"])
		}
	})
	t.Run("every try failed", func(t *testing.T) {
		dead1, dead2 := testutil.RefusedAddr(t, "tcp"), testutil.RefusedAddr(t, "tcp")
		s := startServer(t, testConfig(t, []netip.AddrPort{dead1, dead2}, func(fb *config.FrontendBuilder) {
			fb.Retries(1).Strategy(config.StrategyRoundRobin)
		}))
		if err := dialAndRead(s.Addrs("fe")[0].String()); !errors.Is(err, errConnReset) {
			t.Fatalf("client: %v, want a reset", err)
		}
		f := lastLine(t, s, CauseConnectFailed)
		tries := f["tries"].([]any)
		var names []string
		for _, x := range tries {
			try := x.(map[string]any)
			if try["result"] != "refused" {
				t.Errorf("try %v, want refused", try)
			}
			names = append(names, try["backend"].(string))
		}
		slices.Sort(names)
		want := []string{dead1.String(), dead2.String()}
		slices.Sort(want)
		if !slices.Equal(names, want) || f["error"] != true || f["backend"] != nil {
			t.Errorf("tries %v (want one per backend), error %v, backend %v", tries, f["error"], f["backend"])
		}
	})
	t.Run("queued then timed out", func(t *testing.T) {
		const qt = 300 * time.Millisecond
		b := startBackend(t, echo)
		s := startServer(t, testConfig(t, nil, func(fb *config.FrontendBuilder) {
			fb.Backend(b.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 1}).QueueTimeout(qt)
		}))
		dialFE(t, s)
		testutil.WaitFor(t, 5*time.Second, "the holder connected", func() bool { return b.accepted.Load() == 1 })
		if err := dialAndRead(s.Addrs("fe")[0].String()); !errors.Is(err, errConnReset) {
			t.Fatalf("waiter: %v, want a reset", err)
		}
		f := lastLine(t, s, CauseQueueTimeout)
		if q := f["queue_seconds"].(float64); q < qt.Seconds()-0.011 || q > qt.Seconds()+0.1 {
			t.Errorf("queue_seconds %v, want about %v", q, qt.Seconds())
		}
	})
}

// log_connections = "errors" logs every end but the clean ones, and a clean
// one whose backend took longer than log_slow to be ready; "off" logs none.
func TestConnLogPolicy(t *testing.T) {
	b := startBackend(t, echo)
	run := func(t *testing.T, s *Server) {
		t.Helper()
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := exchange(c, []byte("clean")); err != nil {
			t.Fatal(err)
		}
		r := dialFE(t, s)
		r.SetDeadline(time.Now().Add(5 * time.Second))
		r.Write([]byte("x"))
		io.ReadFull(r, make([]byte, 1))
		r.SetLinger(0)
		r.Close()
		testutil.WaitFor(t, 5*time.Second, "both ended", func() bool {
			fc, _ := s.Counters("fe")
			return fc.Closed[CauseClientFIN] == 1 && fc.Closed[CauseClientReset] == 1
		})
	}
	t.Run("errors", func(t *testing.T) {
		s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
			fb.LogConnections(config.LogErrors)
		}))
		run(t, s)
		checkLogLines(t, s, CauseClientReset, 1)
		checkLogLines(t, s, CauseClientFIN, 0)
	})
	t.Run("off", func(t *testing.T) {
		s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
			fb.LogConnections(config.LogOff)
		}))
		run(t, s)
		// Lines are written in order per loop, but the two
		// connections may be on different loops: wait for the writer.
		testutil.WaitFor(t, 5*time.Second, "the writer idle", func() bool { return !s.connlog.pending() })
		if n := s.ConnLogCounters().Lines; n != 0 {
			t.Errorf("%d lines with log_connections off", n)
		}
	})
	t.Run("slow", func(t *testing.T) {
		// A capped backend makes the second client wait in the queue:
		// 200 ms to be ready, above log_slow.
		b := startBackend(t, echo)
		s := startServer(t, testConfig(t, nil, func(fb *config.FrontendBuilder) {
			fb.Backend(b.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 1}).
				LogConnections(config.LogErrors).LogSlow(100 * time.Millisecond)
		}))
		holder := dialFE(t, s)
		testutil.WaitFor(t, 5*time.Second, "the holder connected", func() bool { return b.accepted.Load() >= 1 })
		done := make(chan error, 1)
		go func() {
			c, err := net.DialTimeout("tcp", s.Addrs("fe")[0].String(), 5*time.Second)
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _, err = exchange(c.(*net.TCPConn), []byte("slow"))
			done <- err
		}()
		testutil.WaitFor(t, 5*time.Second, "the second client queued", func() bool {
			fc, _ := s.Counters("fe")
			return fc.QueuedNow == 1
		})
		time.Sleep(200 * time.Millisecond) // the wait under test
		holder.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		lines := checkLogLines(t, s, CauseClientFIN, 1) // the holder was quick: no line
		f := lines[0].fields
		if f["error"] != true || f["queue_seconds"].(float64) < 0.2 {
			t.Errorf("slow line: error %v, queue_seconds %v; want true, at least 0.2", f["error"], f["queue_seconds"])
		}
	})
}

// log_sample keeps a share of the clean lines and every error line.
func TestConnLogSample(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
		fb.LogSample(0.25)
	}))
	const n = 400
	for i := 0; i < n; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := exchange(c, []byte("x")); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	testutil.WaitFor(t, 5*time.Second, "every connection ended", func() bool {
		fc, _ := s.Counters("fe")
		return fc.Closed[CauseClientFIN] == n
	})
	testutil.WaitFor(t, 5*time.Second, "the writer idle", func() bool { return !s.connlog.pending() })
	// Binomial(400, 0.25): 100 ± 8.7; outside 50..150 is a 6-sigma event.
	if got, _ := captured(s).withCause(CauseClientFIN); got < 50 || got > 150 {
		t.Errorf("%d of %d clean connections logged at log_sample 0.25", got, n)
	}
	c := dialFE(t, s)
	c.SetLinger(0)
	c.Close()
	checkLogLines(t, s, CauseClientReset, 1)
}

// A reload applies log_connections to the connections open across it.
func TestConnLogReloadAppliesToOpenConnections(t *testing.T) {
	b := startBackend(t, echo)
	off := func(fb *config.FrontendBuilder) { fb.LogConnections(config.LogOff) }
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, off))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	cfg := testConfig(t, []netip.AddrPort{b.addr}, nil) // "all"
	cfg.Frontends[0].Listen = s.Addrs("fe")
	reload(t, s, cfg)
	if _, _, err := exchange(c, nil); err != nil {
		t.Fatal(err)
	}
	checkLogLines(t, s, CauseClientFIN, 1)
}

// Each way a UDP flow ends gets one line with the flow's figures. A flow
// that its idle timeout ends after replies ended cleanly (with responses
// = -1 that is how flows end); one that never had a reply did not.
func TestConnLogUDPFlows(t *testing.T) {
	t.Run("replied", func(t *testing.T) {
		b := startUDPBackend(t, taggedEcho('A'))
		s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) { fb.Responses(1) }))
		c := udpClient(t, s.Addrs("fe")[0])
		if _, err := udpExchange(c, []byte("query"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		f := lastLine(t, s, CauseReplied)
		want := map[string]any{
			"protocol": "udp", "client": c.LocalAddr().(*net.UDPAddr).AddrPort().String(), "backend": b.addr.String(),
			"bytes_in": 5.0, "bytes_out": 6.0, "datagrams_in": 1.0, "datagrams_out": 1.0, "error": false,
			"message": "flow closed",
		}
		for k, v := range want {
			if f[k] != v {
				t.Errorf("%s = %v, want %v", k, f[k], v)
			}
		}
		if f["reply_seconds"].(float64) <= 0 {
			t.Errorf("reply_seconds %v", f["reply_seconds"])
		}
	})
	t.Run("idle after replies, and without", func(t *testing.T) {
		b := startUDPBackend(t, func(p []byte) udpReply {
			if string(p) == "silent" {
				return udpReply{}
			}
			return udpReply{data: p}
		})
		s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
			fb.IdleTimeout(200 * time.Millisecond)
		}))
		answered := udpClient(t, s.Addrs("fe")[0])
		if _, err := udpExchange(answered, []byte("q"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		unanswered := udpClient(t, s.Addrs("fe")[0])
		unanswered.Write([]byte("silent"))
		lines := checkLogLines(t, s, CauseIdleTimeout, 2)
		errs := map[any]int{}
		for _, l := range lines {
			errs[l.fields["error"]]++
		}
		if errs[true] != 1 || errs[false] != 1 {
			t.Errorf("error fields %v, want one flow clean (replied) and one not", errs)
		}
	})
	t.Run("icmp error", func(t *testing.T) {
		dead := testutil.RefusedAddr(t, "udp")
		s := startServer(t, udpConfig(t, []netip.AddrPort{dead}, nil))
		c := udpClient(t, s.Addrs("fe")[0])
		c.Write([]byte("anyone?"))
		if f := lastLine(t, s, CauseICMPError); f["error"] != true || f["datagrams_out"] != 0.0 {
			t.Errorf("error %v, datagrams_out %v", f["error"], f["datagrams_out"])
		}
	})
	t.Run("admin kill, backend down, local error, shutdown", func(t *testing.T) {
		b := startUDPBackend(t, taggedEcho('A'))
		s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, nil))
		open := func() {
			t.Helper()
			c := udpClient(t, s.Addrs("fe")[0])
			if _, err := udpExchange(c, []byte("q"), 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		open()
		list, _ := s.Connections("fe", 0, 10)
		if err := s.CloseConnection(list[0].ID); err != nil {
			t.Fatal(err)
		}
		checkLogLines(t, s, CauseAdminKill, 1)

		// A flow whose backend went down ends at its client's next
		// datagram, which opens a new flow once the backend is back.
		c := udpClient(t, s.Addrs("fe")[0])
		if _, err := udpExchange(c, []byte("q"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		be := s.Backends("fe")[0]
		be.SetHealthy(false)
		c.Write([]byte("q"))
		checkLogLines(t, s, CauseBackendDown, 1)
		be.SetHealthy(true)

		// Out of ephemeral ports is not something a test can cause on
		// a shared machine: the loop ends a live flow as forward does.
		open()
		s.eachLoop(func(l *loop) {
			for _, ln := range l.udp {
				for _, f := range ln.flows {
					f.close(CauseLocalError)
				}
			}
		})
		checkLogLines(t, s, CauseLocalError, 1)

		open()
		s.Close()
		checkLogLines(t, s, CauseShutdown, 1)
	})
}

// The writer turns records into lines a JSON parser reads whatever the
// backend is called, and console lines of key=value pairs that split
// unambiguously.
func TestConnLogFormats(t *testing.T) {
	weird, err := backend.New(backend.Spec{Name: "db \"one\"\n\x01é\xff", Address: netip.MustParseAddrPort("[::1]:5432"), Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2025, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("CET", 3600))
	r := &logRecord{
		end: end, start: end.Add(-1500 * time.Millisecond), id: 42, frontend: "pg",
		client: netip.MustParseAddrPort("10.1.2.3:40000"), listen: netip.MustParseAddrPort("0.0.0.0:6432"),
		be: weird, cause: CauseBackendReset, error: true, ntried: 2,
		queue: 2 * time.Millisecond, connect: 345 * time.Microsecond, bytesIn: 10, bytesOut: 2000,
	}
	r.tried[0], r.results[0] = weird, TryTimeout
	r.tried[1], r.results[1] = weird, TryConnected
	var m map[string]any
	line := appendJSONRecord(nil, r)
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	if m["backend"] != "db \"one\"\n\x01é\uFFFD" || m["time"] != "2025-03-04T04:06:07.891Z" ||
		m["duration_seconds"] != 1.5 || m["queue_seconds"] != 0.002 || m["connect_seconds"] != 0.000345 ||
		m["backend_address"] != "[::1]:5432" {
		t.Errorf("parsed %v", m)
	}
	want := `2025-03-04T04:06:07.891Z INF connection closed component=connlog connection_id=42 protocol=tcp frontend=pg ` +
		`client=10.1.2.3:40000 listen=0.0.0.0:6432 backend="db \"one\"\n\x01é\xff" backend_address=[::1]:5432 ` +
		`tries="db \"one\"\n\x01é\xff":timeout,"db \"one\"\n\x01é\xff":connected queue_seconds=0.002000 ` +
		`connect_seconds=0.000345 duration_seconds=1.500000 bytes_in=10 bytes_out=2000 cause=backend_reset error=true` + "\n"
	if got := string(appendConsoleRecord(nil, r)); got != want {
		t.Errorf("console:\n got %q\nwant %q", got, want)
	}
}

// Appending a record allocates nothing once the buffer has grown: the
// writer formats a line per connection.
func BenchmarkConnLogFormat(b *testing.B) {
	be, _ := backend.New(backend.Spec{Address: netip.MustParseAddrPort("10.0.0.11:5432"), Weight: 1})
	now := time.Now()
	r := &logRecord{end: now, start: now.Add(-time.Second), id: 1, frontend: "pg",
		client: netip.MustParseAddrPort("10.1.2.3:40000"), listen: netip.MustParseAddrPort("0.0.0.0:6432"),
		be: be, cause: CauseClientFIN, ntried: 1, bytesIn: 100, bytesOut: 1000}
	r.tried[0], r.results[0] = be, TryConnected
	for _, format := range []string{LogFormatJSON, LogFormatConsole} {
		b.Run(format, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if format == LogFormatJSON {
					buf = appendJSONRecord(buf[:0], r)
				} else {
					buf = appendConsoleRecord(buf[:0], r)
				}
			}
		})
	}
}

// What a loop pays per line: reserving a slot, copying the record in and
// publishing it. The writer's side is simulated by moving head whenever
// half the ring is full, as a writer that keeps up would; it runs on
// another goroutine in the server, where it costs the loop nothing.
func BenchmarkConnLogPush(b *testing.B) {
	be, _ := backend.New(backend.Spec{Address: netip.MustParseAddrPort("10.0.0.11:5432"), Weight: 1})
	const size = 1024
	ring := newLogRing(size)
	var c conn
	c.start, c.connectedAt, c.ntried, c.be = time.Now(), 1, 1, be
	c.tried[0], c.results[0] = be, TryConnected
	b.ReportAllocs()
	for b.Loop() {
		r := ring.reserve()
		*r = logRecord{
			end: c.start, start: c.start, id: c.id, frontend: "pg", client: c.client, listen: c.listen,
			cause: CauseClientFIN, ntried: c.ntried, tried: c.tried, results: c.results,
			queue: c.queueWait, bytesIn: c.up.bytes, bytesOut: c.down.bytes, be: c.be,
		}
		ring.publish()
		if t := ring.tail.Load(); t-ring.head.Load() >= size/2 {
			ring.head.Store(t)
		}
	}
	if n := ring.dropped.Load(); n != 0 {
		b.Fatalf("%d dropped", n)
	}
}

// The whole cost of a line, on every goroutine: the loop's push, the
// writer's formatting and its writes to a file, measured as the process's
// CPU time per line (getrusage), with the ring and the writer of a real
// server. Quoted in docs/benchmarks.md against the proxy CPU a connection
// costs.
func BenchmarkConnLogCPUPerLine(b *testing.B) {
	be, _ := backend.New(backend.Spec{Address: netip.MustParseAddrPort("10.0.0.11:5432"), Weight: 1})
	f, err := os.Create(filepath.Join(b.TempDir(), "connections.log"))
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{log: zerolog.Nop()}
	s.connlog = newConnLog(s, 1, 1024)
	s.SetLogOutput(LogOutput{W: f, Closer: f})
	s.connlog.start()
	ring := s.connlog.ringFor(0)
	now := time.Now()
	rec := logRecord{end: now, start: now.Add(-time.Second), id: 1, frontend: "pg",
		client: netip.MustParseAddrPort("10.1.2.3:40000"), listen: netip.MustParseAddrPort("0.0.0.0:6432"),
		be: be, cause: CauseClientFIN, ntried: 1, bytesIn: 100, bytesOut: 1000}
	rec.tried[0], rec.results[0] = be, TryConnected
	var ru0, ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := ring.reserve()
		for r == nil {
			// A loop would drop it; here every line is wanted. Sleep,
			// not spin: a spinning producer would charge its own CPU
			// to the writer's account.
			time.Sleep(50 * time.Microsecond)
			r = ring.reserve()
		}
		*r = rec
		ring.publish()
		s.connlog.notify(ring)
	}
	for s.connlog.lines.Load() < uint64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/line")
	s.connlog.stop()
}
