package l4

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// The flood test's figures: floodConns short connections while the writer
// is stalled, floodBaseline with the log off for the rate to compare with,
// both in floodRounds rounds; floodWorkers clients at once, and a ring of
// floodRing records per loop.
const (
	floodConns    = 100_000
	floodBaseline = 20_000
	floodRounds   = 10
	floodWorkers  = 8
	floodRing     = 16
)

// flood makes n short connections to addr from floodWorkers goroutines:
// each reads the backend's greeting byte and resets, so that no TIME_WAIT
// is left on either side to use ports up. It returns the rate.
func flood(t *testing.T, addr string, n int) float64 {
	t.Helper()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < floodWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for next.Add(1) <= int64(n) {
				if err := shortConn(addr, buf); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d connections failed; first: %v", f, n, firstErr.Load())
	}
	return float64(n) / d.Seconds()
}

// shortConn is one flood connection.
func shortConn(addr string, buf []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	return c.(*net.TCPConn).SetLinger(0)
}

// TestConnLogFloodStalledWriter: a destination that blocks (a pipe nobody
// reads, as a stuck log shipper leaves it) never slows the data plane.
// With a ring of floodRing lines per loop, 100000 short connections are
// served at the rate they are with the log off (at least half of it here,
// which a loop waiting on the writer could not reach; the cost itself is
// BenchmarkConnLogCPUPerLine's); every line that could not be written is
// counted, exactly, and summarised once the writer runs again.
func TestConnLogFloodStalledWriter(t *testing.T) {
	// A minute of both CPUs: not beside a real database failover test.
	testutil.Exclusive(t, "cpu", 5*time.Minute)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.Write([]byte{'!'})
		io.Copy(io.Discard, c)
	})
	mutate := func(log string) func(*config.FrontendBuilder) {
		return func(fb *config.FrontendBuilder) { fb.LogConnections(log) }
	}
	cfg := func(log string) *config.Config {
		fb := config.New().Workers(2).MaxPipes(64).ConnectionsBuffer(floodRing).
			Frontend("fe").Listen("127.0.0.1:0").ConnectTimeout(time.Second)
		return buildConfig(t, fb, []netip.AddrPort{b.addr}, mutate(log))
	}
	s := startServer(t, cfg(config.LogOff))
	addr := s.Addrs("fe")[0]

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	// The smallest pipe the kernel makes: the writer stalls after a
	// dozen lines.
	unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096)
	s.SetLogOutput(LogOutput{W: w})

	// The rates to compare, in alternating rounds so that a slow moment
	// of this shared machine weighs on both alike: the log off, then
	// "all" with the writer stalled. The medians are compared.
	withLog := func(log string) {
		// Every connection of the round ends under its own setting.
		testutil.WaitFor(t, 5*time.Second, "every connection ended", func() bool { return s.ActiveConnections() == 0 })
		c := cfg(log)
		c.Frontends[0].Listen = []netip.AddrPort{addr}
		reload(t, s, c)
	}
	var offRates, stalledRates []float64
	for round := 0; round < floodRounds; round++ {
		withLog(config.LogOff)
		offRates = append(offRates, flood(t, addr.String(), floodBaseline/floodRounds))
		withLog(config.LogAll)
		stalledRates = append(stalledRates, flood(t, addr.String(), floodConns/floodRounds))
	}
	off, stalled := median(offRates), median(stalledRates)
	t.Logf("connections per second (median of %d rounds): log off %.0f, log all with the writer stalled %.0f (%.0f%%)",
		floodRounds, off, stalled, 100*stalled/off)
	// A loop that waited on the stalled writer would serve next to
	// nothing; what the log costs a loop that does not is measured by
	// BenchmarkConnLogCPUPerLine, not here: on this shared machine the
	// medians of the two modes differ by 20% from noise alone.
	if stalled < off*0.5 {
		t.Errorf("with the writer stalled the rate fell to %.0f/s, from %.0f/s with the log off (rounds: %.0f, %.0f)",
			stalled, off, stalledRates, offRates)
	}

	testutil.WaitFor(t, 5*time.Second, "every connection ended", func() bool { return s.ActiveConnections() == 0 })
	ctr := s.ConnLogCounters()
	if ctr.Lines+ctr.DroppedFull > floodConns || ctr.DroppedFull < floodConns/2 {
		t.Fatalf("while stalled: %d lines written, %d dropped, of %d connections", ctr.Lines, ctr.DroppedFull, floodConns)
	}
	t.Logf("while stalled: %d lines written, %d dropped (%d held in the rings and the pipe)",
		ctr.Lines, ctr.DroppedFull, floodConns-ctr.Lines-ctr.DroppedFull)

	// Unstall: every connection has its line, or is counted as dropped,
	// and the summary lines say how many.
	type result struct {
		lines, summaries, dropped uint64
		bad                       string
	}
	done := make(chan result, 1)
	go func() {
		var res result
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				res.bad = sc.Text()
				continue
			}
			if d, ok := m["dropped"].(float64); ok {
				res.summaries++
				res.dropped += uint64(d)
			} else if m["cause"] == "client_reset" || m["cause"] == "client_fin" {
				res.lines++
			} else {
				res.bad = sc.Text()
			}
		}
		done <- res
	}()
	testutil.WaitFor(t, 10*time.Second, "every line written or dropped", func() bool {
		c := s.ConnLogCounters()
		return c.Lines+c.DroppedFull == floodConns
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	res := <-done
	ctr = s.ConnLogCounters()
	if res.bad != "" {
		t.Errorf("unexpected line: %s", res.bad)
	}
	if res.lines != ctr.Lines || res.dropped != ctr.DroppedFull || res.lines+res.dropped != floodConns ||
		res.summaries == 0 || ctr.DroppedWrite != 0 {
		t.Errorf("read %d lines and %d summaries of %d drops; counters: %+v; want %d connections in all",
			res.lines, res.summaries, res.dropped, ctr, floodConns)
	}
}

// median is the median of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
