package l4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// testBackend is a real TCP server on loopback running handler on every
// accepted connection. Cleanup closes it and every connection it holds.
type testBackend struct {
	ln       net.Listener
	addr     netip.AddrPort
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func startBackend(t testing.TB, handler func(net.Conn)) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if errors.Is(err, syscall.EMFILE) {
				// A test ran the process out of fds; retry as a
				// production server would.
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				handler(c)
			}()
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *testBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// echo copies everything back, then passes the client's FIN on.
func echo(c net.Conn) {
	defer c.Close()
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// testConfig builds a one-frontend config named "fe" on 127.0.0.1:0 with
// the given backends (weight 1 each), then lets mutate adjust the frontend.
func testConfig(t testing.TB, backends []netip.AddrPort, mutate func(b *config.FrontendBuilder)) *config.Config {
	t.Helper()
	fb := config.New().Workers(2).MaxPipes(64).ConnectionsBuffer(testLogBuffer).Frontend("fe").Listen("127.0.0.1:0").
		Retries(2).ConnectTimeout(time.Second).LogConnections(config.LogAll)
	return buildConfig(t, fb, backends, mutate)
}

// buildConfig adds backends (weight 1 each) to fb, lets mutate adjust the
// frontend, and builds the config, failing the test if it does not build.
func buildConfig(t testing.TB, fb *config.FrontendBuilder, backends []netip.AddrPort, mutate func(b *config.FrontendBuilder)) *config.Config {
	t.Helper()
	for _, a := range backends {
		fb = fb.Backend(a.String(), 1)
	}
	if mutate != nil {
		mutate(fb)
	}
	cfg, err := fb.Build()
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// testLogger logs warnings and errors through t.
func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// startServer starts a server for cfg; cleanup closes it and checks that
// every connection and pipe was released.
func startServer(t testing.TB, cfg *config.Config) *Server {
	t.Helper()
	return startObserved(t, cfg, nil)
}

// startObserved is startServer with o, when not nil, observing frontend
// "fe".
func startObserved(t testing.TB, cfg *config.Config, o Observer) *Server {
	t.Helper()
	s, err := NewServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Every test server writes its connection log to memory, where
	// waitCause checks a line per counted end.
	capture(s)
	t.Cleanup(func() { captures.Delete(s) })
	if o != nil {
		if err := s.Observe("fe", o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// dialFE connects to the first address of frontend "fe".
func dialFE(t testing.TB, s *Server) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addrs("fe")[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// settle waits for goroutines and fds to come back to a baseline taken
// before a test's traffic.
func settle(t testing.TB, fds, goroutines int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "fds and goroutines back to baseline", func() bool {
		// The Go backends' io.Copy splices through pipes that the runtime
		// keeps in a sync.Pool and closes by finalizer: collect them.
		runtime.GC()
		return openFDs(t) <= fds && runtime.NumGoroutine() <= goroutines
	})
}

// ctx returns a context bounded by d and cancelled at cleanup.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// blackhole returns a loopback address whose listener never accepts and
// whose accept queue is full, so the kernel drops further SYNs: a connect
// there neither succeeds nor fails until the connector gives up.
func blackhole(t testing.TB) netip.AddrPort {
	_, addr := testutil.FullListener(t)
	return addr
}

// rssBytes is this process's resident set size.
func rssBytes(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		t.Fatal(err)
	}
	return resident * int64(os.Getpagesize())
}

// cpuTime is the user plus system CPU time this process has used.
func cpuTime(t testing.TB) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	errConnReset = syscall.ECONNRESET
	errPipe      = syscall.EPIPE
)

// waitCause waits until frontend "fe" of s has counted exactly want
// connections ended with cause, and checks that no other cause counted
// more than the others allow: it returns the counts.
func waitCause(t testing.TB, s *Server, cause Cause, want uint64) [NumCauses]uint64 {
	t.Helper()
	var got [NumCauses]uint64
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("%d connections ended with %v", want, cause), func() bool {
		c, _ := s.Counters("fe")
		got = c.Closed
		return got[cause] >= want
	})
	if got[cause] != want {
		t.Errorf("%v: %d connections, want %d (all causes: %v)", cause, got[cause], want, causeCounts(got))
	}
	checkLogLines(t, s, cause, want)
	return got
}

// causeCounts renders non-zero cause counts for failure messages.
func causeCounts(c [NumCauses]uint64) string {
	s := ""
	for i, n := range c {
		if n != 0 {
			s += fmt.Sprintf(" %v=%d", Cause(i), n)
		}
	}
	return s
}

// dialAndRead connects to addr and reads until the end of the stream. It
// returns nil for a FIN, or the error that ended the stream, at the dial
// (a refused client may be reset before its handshake completes on its
// side) or at a read.
func dialAndRead(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c)
	return err
}
