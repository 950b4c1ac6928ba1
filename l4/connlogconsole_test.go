package l4

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// gatedWriter is a connection log destination the test can stall: every
// Write waits while the test holds gate (Lock), as a write to a full pipe
// would; writes share it (RLock) among themselves.
type gatedWriter struct {
	gate sync.RWMutex
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.gate.RLock()
	defer g.gate.RUnlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gatedWriter) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

var consoleSummaryRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WRN connection log lines dropped: ` +
	`the writer fell behind component=connlog dropped=(\d+)$`)

// In the console form, the lines a stalled destination cost are reported
// as console lines too, at most one a second: a first summary as soon as
// the writer runs again, the next, for drops within the same second, once
// the second has passed. The summaries add up to the drops counted, and
// every other line is a connection's.
func TestConnLogConsoleSummaries(t *testing.T) {
	b := startBackend(t, echo)
	fb := config.New().Workers(1).ConnectionsBuffer(16).Frontend("fe").Listen("127.0.0.1:0").LogConnections(config.LogAll)
	s := startServer(t, buildConfig(t, fb, []netip.AddrPort{b.addr}, nil))
	w := &gatedWriter{}
	s.SetLogFormat(LogFormatConsole)
	s.SetLogOutput(LogOutput{W: w})
	addr := s.Addrs("fe")[0].String()
	connect := func(n int) {
		for i := 0; i < n; i++ {
			if err := dialAndClose(addr); err != nil {
				t.Fatal(err)
			}
		}
	}
	summaries := func() (n int, dropped uint64) {
		for _, line := range strings.Split(w.String(), "\n") {
			if m := consoleSummaryRE.FindStringSubmatch(line); m != nil {
				d, _ := strconv.ParseUint(m[1], 10, 64)
				n++
				dropped += d
			}
		}
		return n, dropped
	}
	round := func(want int) {
		t.Helper()
		before := s.ConnLogCounters().DroppedFull
		w.gate.Lock()
		connect(40)
		testutil.WaitFor(t, 5*time.Second, "lines dropped", func() bool { return s.ConnLogCounters().DroppedFull > before })
		testutil.WaitFor(t, 5*time.Second, "every connection ended", func() bool { return s.ActiveConnections() == 0 })
		w.gate.Unlock()
		testutil.WaitFor(t, 5*time.Second, "the summary line", func() bool {
			n, d := summaries()
			return n == want && d == s.ConnLogCounters().DroppedFull
		})
	}
	start := time.Now()
	round(1)
	round(2)
	if el := time.Since(start); el < summaryEvery {
		t.Errorf("two summaries within %v; at most one a second", el)
	}
	s.Close()
	c := s.ConnLogCounters()
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	conns := 0
	for _, line := range lines {
		switch {
		case consoleSummaryRE.MatchString(line):
		case strings.Contains(line, " INF connection closed component=connlog ") && strings.HasSuffix(line, " cause=client_fin error=false"):
			conns++
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
	if uint64(conns) != c.Lines || c.Lines+c.DroppedFull != 80 || c.DroppedWrite != 0 {
		t.Errorf("%d connection lines; counters %+v; want 80 connections in all", conns, c)
	}
}

// dialAndClose connects to addr, sends a byte, reads its echo and closes
// with a FIN.
func dialAndClose(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	c := nc.(*net.TCPConn)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{1}); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return err
	}
	c.CloseWrite()
	_, err = io.Copy(io.Discard, c)
	return err
}

// failingWriter refuses every write, as a full disk does.
type failingWriter struct{}

var errDiskFull = errors.New("no space left on device")

func (failingWriter) Write(p []byte) (int, error) { return 0, errDiskFull }

// A destination that refuses writes loses the lines, each counted as lost
// (not as written), and the daemon log says so with the count, once, not
// once per write.
func TestConnLogWriteErrors(t *testing.T) {
	b := startBackend(t, echo)
	s, log := startLogged(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	s.SetLogOutput(LogOutput{W: failingWriter{}})
	addr := s.Addrs("fe")[0].String()
	const n = 5
	for i := 0; i < n; i++ {
		if err := dialAndClose(addr); err != nil {
			t.Fatal(err)
		}
		// One line, one write: let the writer write each.
		want := uint64(i + 1)
		testutil.WaitFor(t, 5*time.Second, "the line lost", func() bool { return s.ConnLogCounters().DroppedWrite == want })
	}
	if c := s.ConnLogCounters(); c.Lines != 0 || c.DroppedFull != 0 {
		t.Errorf("counters %+v; want %d lost, none written", c, n)
	}
	var errs []string
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "connection log: writing failed; lines lost") {
			errs = append(errs, line)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], `"error":"no space left on device"`) || !strings.Contains(errs[0], `"lines_lost":1`) {
		t.Errorf("daemon log lines %q; want one error naming the cause and the first line lost", errs)
	}
}

// The console form of a UDP flow's line and of a connection that never
// tried a backend.
func TestConnLogConsoleFlowLine(t *testing.T) {
	be, err := backend.New(backend.Spec{Address: netip.MustParseAddrPort("10.0.0.53:53"), Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	flow := &logRecord{
		end: end, start: end.Add(-250 * time.Millisecond), id: 7, frontend: "dns", udp: true,
		client: netip.MustParseAddrPort("10.1.2.3:5353"), listen: netip.MustParseAddrPort("10.0.0.1:53"),
		be: be, cause: CauseReplied, ready: 1500 * time.Microsecond,
		bytesIn: 40, bytesOut: 120, dgramsIn: 1, dgramsOut: 2,
	}
	want := `2025-03-04T05:06:07.891Z INF flow closed component=connlog connection_id=7 protocol=udp frontend=dns ` +
		`client=10.1.2.3:5353 listen=10.0.0.1:53 backend=10.0.0.53:53 backend_address=10.0.0.53:53 reply_seconds=0.001500 ` +
		`duration_seconds=0.250000 bytes_in=40 bytes_out=120 datagrams_in=1 datagrams_out=2 cause=replied error=false` + "\n"
	if got := string(appendConsoleRecord(nil, flow)); got != want {
		t.Errorf("flow:\n got %q\nwant %q", got, want)
	}
	denied := &logRecord{
		end: end, start: end, id: 8, frontend: "", cause: CauseDenied, error: true,
		client: netip.MustParseAddrPort("10.9.9.9:1000"), listen: netip.MustParseAddrPort("10.0.0.1:5432"),
	}
	want = `2025-03-04T05:06:07.891Z INF connection closed component=connlog connection_id=8 protocol=tcp frontend="" ` +
		`client=10.9.9.9:1000 listen=10.0.0.1:5432 tries=- queue_seconds=0.000000 connect_seconds=0.000000 ` +
		`duration_seconds=0.000000 bytes_in=0 bytes_out=0 cause=access_list error=true` + "\n"
	if got := string(appendConsoleRecord(nil, denied)); got != want {
		t.Errorf("denied:\n got %q\nwant %q", got, want)
	}
	// JSON escapes a tab and a carriage return in a name.
	if got := string(appendJSONString(nil, "a\tb\rc")); got != `"a\tb\rc"` {
		t.Errorf("JSON string %s", got)
	}
}

// Stopping the server waits for the connection log's writer to write what
// is left, but not past writerStopWait when the destination blocks: the
// lines still held are lost, and the daemon log says so.
func TestConnLogStopBoundedWhenTheDestinationBlocks(t *testing.T) {
	b := startBackend(t, echo)
	s, log := startLogged(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	w := &gatedWriter{}
	s.SetLogOutput(LogOutput{W: w})
	w.gate.Lock()
	released := false
	release := func() {
		if !released {
			released = true
			w.gate.Unlock()
		}
	}
	t.Cleanup(release)
	if err := dialAndClose(s.Addrs("fe")[0].String()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the connection ended", func() bool { return s.ActiveConnections() == 0 })
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < writerStopWait || el > 2*writerStopWait {
		t.Errorf("Close took %v with the destination blocked; want %v, up to twice that", el, writerStopWait)
	}
	release()
	if !strings.Contains(log.String(), "connection log: the destination blocks; lines still held are lost") {
		t.Errorf("no warning in the daemon log:\n%s", log.String())
	}
}
