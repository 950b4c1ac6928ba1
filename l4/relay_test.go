package l4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// randomBlock returns n deterministic pseudo-random bytes.
func randomBlock(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// exchange writes payload on c while reading, half-closes, and returns the
// SHA-256 of everything read until EOF.
func exchange(c *net.TCPConn, payload []byte) ([32]byte, int64, error) {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	if err := <-werr; err != nil {
		return [32]byte{}, n, err
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n, rerr
}

func TestIntegrityThousandConnections(t *testing.T) {
	const (
		conns       = 1000
		concurrency = 32
		maxSize     = 4 << 20
	)
	b1, b2 := startBackend(t, echo), startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b1.addr, b2.addr}, nil))
	fe := s.frontends[0]

	// Payloads are windows of one random block; sizes are log-uniform over
	// 1 B .. 4 MiB, with the extremes always included.
	block := randomBlock(2*maxSize, 1)
	r := rand.New(rand.NewPCG(2, 3))
	sizes := make([]int, conns)
	var total uint64
	for i := range sizes {
		switch i {
		case 0:
			sizes[i] = 0
		case 1:
			sizes[i] = maxSize
		default:
			sizes[i] = int(math.Exp(r.Float64() * math.Log(maxSize)))
		}
		total += uint64(sizes[i])
	}

	var failures atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= conns {
					return
				}
				off := (i * 7919) % maxSize
				payload := block[off : off+sizes[i]]
				c, err := net.DialTimeout("tcp", s.Addrs("fe")[0].String(), 5*time.Second)
				if err != nil {
					t.Errorf("conn %d: dial: %v", i, err)
					failures.Add(1)
					continue
				}
				c.SetDeadline(time.Now().Add(60 * time.Second))
				got, n, err := exchange(c.(*net.TCPConn), payload)
				c.Close()
				if err != nil || got != sha256.Sum256(payload) {
					t.Errorf("conn %d: %d of %d bytes back, err %v, digest match %v", i, n, len(payload), err, got == sha256.Sum256(payload))
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d failed connections", f)
	}
	testutil.WaitFor(t, 5*time.Second, "connections released", func() bool { return s.ActiveConnections() == 0 })
	if got := b1.accepted.Load() + b2.accepted.Load(); got != conns {
		t.Errorf("backends accepted %d connections, want %d", got, conns)
	}
	var up, down, totalConns uint64
	for _, b := range fe.backends {
		st := b.Stats()
		up += st.BytesUp
		down += st.BytesDown
		totalConns += st.Total
		if st.Active != 0 || st.Pipes != 0 {
			t.Errorf("backend %s: %d active, %d pipes after all closed", b.Address(), st.Active, st.Pipes)
		}
	}
	if up != total || down != total || totalConns != conns {
		t.Errorf("counters: up %d down %d total %d; want %d, %d, %d", up, down, totalConns, total, total, conns)
	}
	if n := s.PipesInUse(); n != 0 {
		t.Errorf("%d pipes still in use", n)
	}
}

func TestServerSpeaksFirst(t *testing.T) {
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, "220 ready\n")
		io.Copy(c, c)
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "220 ready\n" {
		t.Fatalf("greeting %q, %v", line, err)
	}
}

func TestHalfCloseFromClient(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	payload := randomBlock(3<<20, 7)
	got, n, err := exchange(c, payload)
	if err != nil || got != sha256.Sum256(payload) {
		t.Fatalf("echo after half-close: %d bytes, %v", n, err)
	}
	// The backend's FIN was the second one: the pair closes on it (the
	// idle timeout, an hour, plays no part).
	testutil.WaitFor(t, 10*time.Second, "pair closed after both FINs", func() bool { return s.ActiveConnections() == 0 })
}

func TestHalfCloseFromBackend(t *testing.T) {
	greeting := randomBlock(1<<20, 8)
	fromClient := make(chan []byte, 1)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.Write(greeting)
		c.(*net.TCPConn).CloseWrite()
		all, _ := io.ReadAll(c)
		fromClient <- all
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, greeting) {
		t.Fatalf("read %d bytes until EOF (%v), want %d", len(got), err, len(greeting))
	}
	// The client can still talk after the backend's FIN.
	if _, err := c.Write([]byte("after your FIN")); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	select {
	case all := <-fromClient:
		if string(all) != "after your FIN" {
			t.Fatalf("backend got %q", all)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend never saw the client's bytes and FIN")
	}
	testutil.WaitFor(t, 10*time.Second, "pair closed after both FINs", func() bool { return s.ActiveConnections() == 0 })
}

func TestFlushOnBackendFIN(t *testing.T) {
	const size = 50 << 20
	payload := randomBlock(size, 9)
	b := startBackend(t, func(c net.Conn) {
		c.Write(payload)
		c.Close()
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	h := sha256.New()
	// Read slowly at first so the backend's FIN arrives while most bytes
	// are still queued in the proxy and the sockets, then at full speed.
	chunk := make([]byte, 64<<10)
	for i := 0; i < 16; i++ {
		n, err := io.ReadFull(c, chunk)
		h.Write(chunk[:n])
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // pacing the reader, not waiting on an outcome
	}
	rest, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := 16*int64(len(chunk)) + rest; got != size || !bytes.Equal(h.Sum(nil), sha256Of(payload)) {
		t.Fatalf("received %d bytes (want %d), digest match %v", got, size, bytes.Equal(h.Sum(nil), sha256Of(payload)))
	}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestResetFromClientReachesBackend(t *testing.T) {
	backendErr := make(chan time.Time, 1)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				backendErr <- time.Now()
				return
			}
			c.Write(buf[:n])
		}
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	c.SetLinger(0)
	sent := time.Now()
	c.Close()
	select {
	case at := <-backendErr:
		if d := at.Sub(sent); d > 100*time.Millisecond {
			t.Errorf("backend saw the reset after %v, want <= 100ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend never saw the client's reset")
	}
	testutil.WaitFor(t, 10*time.Second, "pair cleaned up", func() bool { return s.ActiveConnections() == 0 })
}

func TestResetFromBackendReachesClient(t *testing.T) {
	b := startBackend(t, func(c net.Conn) {
		// Wait for the client's first byte so the reset cannot race the
		// client's own connect.
		io.ReadFull(c, make([]byte, 1))
		io.WriteString(c, "bye")
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	start := time.Now()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var err error
	for err == nil {
		_, err = c.Read(buf)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("client saw the end after %v, want <= 100ms", d)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("client got %v, want a reset or EOF", err)
	}
	testutil.WaitFor(t, 10*time.Second, "pair cleaned up", func() bool { return s.ActiveConnections() == 0 })
	if n := s.frontends[0].backends[0].Stats().Resets; n != 1 {
		t.Errorf("backend resets = %d, want 1", n)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (errors.Is(err, errConnReset) || errors.Is(err, errPipe))
}

func TestRefusedBackendIsRetried(t *testing.T) {
	live1, live2 := startBackend(t, echo), startBackend(t, echo)
	dead := testutil.RefusedAddr(t, "tcp")
	s := startServer(t, testConfig(t, []netip.AddrPort{live1.addr, dead, live2.addr}, nil))
	const clients = 30
	for i := 0; i < clients; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, _, err := exchange(c, []byte("hello"))
		if err != nil || got != sha256.Sum256([]byte("hello")) {
			t.Fatalf("client %d failed: %v", i, err)
		}
		c.Close()
	}
	if got := live1.accepted.Load() + live2.accepted.Load(); got != clients {
		t.Errorf("live backends accepted %d, want %d", got, clients)
	}
	// Round-robin over a, dead, b: every second client lands on dead first,
	// is refused and retried on b.
	st := s.frontends[0].backends[1].Stats()
	if got := st.Failures[backend.FailRefused]; got != clients/2 {
		t.Errorf("refused count on the dead backend = %d, want %d", got, clients/2)
	}
}

func TestAllBackendsDownClosesClient(t *testing.T) {
	const connectTimeout = 500 * time.Millisecond
	cfg := testConfig(t, []netip.AddrPort{testutil.RefusedAddr(t, "tcp"), testutil.RefusedAddr(t, "tcp")}, func(b *config.FrontendBuilder) {
		b.ConnectTimeout(connectTimeout)
	})
	s := startServer(t, cfg)
	start := time.Now()
	if err := dialAndRead(s.Addrs("fe")[0].String()); !errors.Is(err, errConnReset) {
		t.Fatalf("client with every backend down: %v, want a reset", err)
	}
	if d := time.Since(start); d > connectTimeout+200*time.Millisecond {
		t.Errorf("client closed after %v, want within %v", d, connectTimeout+200*time.Millisecond)
	}
	waitCause(t, s, CauseConnectFailed, 1)
}

func TestConnectTimeoutTriesNextBackend(t *testing.T) {
	const connectTimeout = 300 * time.Millisecond
	hole := blackhole(t)
	live := startBackend(t, func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, "live\n")
	})
	cfg := testConfig(t, []netip.AddrPort{hole, live.addr}, func(b *config.FrontendBuilder) {
		b.ConnectTimeout(connectTimeout).Retries(1)
	})
	s := startServer(t, cfg)
	start := time.Now()
	c := dialFE(t, s)
	c.SetDeadline(start.Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	elapsed := time.Since(start)
	if err != nil || line != "live\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	// Never before the timeout; after it, by as much as a loaded machine
	// keeps the loop off the CPU (the wheel's own accuracy is
	// l4/internal/timer's to test), but well before a second timeout.
	if lo, hi := connectTimeout*8/10, 2*connectTimeout; elapsed < lo || elapsed > hi {
		t.Errorf("answer after %v, want the connect timeout %v (from -20%% to +100%%)", elapsed, connectTimeout)
	}
	st := s.frontends[0].backends[0].Stats()
	if got := st.Failures[backend.FailTimeout]; got != 1 {
		t.Errorf("timeouts on the unanswering backend = %d, want 1", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	b := startBackend(t, echo)
	cfg := testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) { fb.IdleTimeout(idle) })
	s := startServer(t, cfg)

	// Timed from before the dial: the idle time runs from the loop's
	// wake-up that accepts the connection, which can come before the
	// client's connect returns.
	start := time.Now()
	idleConn := dialFE(t, s)
	busy := dialFE(t, s)
	idleConn.SetDeadline(start.Add(5 * time.Second))
	busy.SetDeadline(start.Add(5 * time.Second))

	closed := make(chan time.Duration, 1)
	go func() {
		idleConn.Read(make([]byte, 1))
		closed <- time.Since(start)
	}()
	// The busy pair talks every 100 ms for three idle periods.
	buf := make([]byte, 4)
	for time.Since(start) < 3*idle {
		if _, err := busy.Write([]byte("tick")); err != nil {
			t.Fatalf("busy pair cut after %v: %v", time.Since(start), err)
		}
		if _, err := io.ReadFull(busy, buf); err != nil {
			t.Fatalf("busy pair cut after %v: %v", time.Since(start), err)
		}
		time.Sleep(idle / 3) // the traffic pattern under test
	}
	select {
	case d := <-closed:
		// Never before the idle time; after it, by as much as a loaded
		// machine keeps the loop off the CPU, but well before a second
		// one.
		if d < idle || d > 2*idle {
			t.Errorf("idle pair closed after %v, want %v (up to +100%%)", d, idle)
		}
	default:
		t.Fatal("idle pair still open after three idle periods")
	}
}

func TestSlowReaderHoldsNoMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 5 s")
	}
	const total = 100 << 20
	block := randomBlock(1<<20, 11)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		for sent := 0; sent < total; sent += len(block) {
			if _, err := c.Write(block); err != nil {
				return
			}
		}
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(60 * time.Second))

	h := sha256.New()
	chunk := make([]byte, 16<<10)
	// Let the pipeline fill up before measuring.
	if _, err := io.ReadFull(c, chunk); err != nil {
		t.Fatal(err)
	}
	h.Write(chunk)
	runtime.GC()
	rss0, cpu0 := rssBytes(t), cpuTime(t)
	// 5 s at 64 KiB/s: 16 KiB every 250 ms.
	for i := 0; i < 20; i++ {
		time.Sleep(250 * time.Millisecond) // the reader's pace under test
		if _, err := io.ReadFull(c, chunk); err != nil {
			t.Fatal(err)
		}
		h.Write(chunk)
	}
	rss1, cpu1 := rssBytes(t), cpuTime(t)
	// The stalled stream holds its data in one pipe, charged to its backend.
	if st := s.frontends[0].backends[0].Stats(); st.Pipes != int64(s.PipesInUse()) || st.Pipes > 1 {
		t.Errorf("backend holds %d pipes, server %d in use; want the same, at most 1", st.Pipes, s.PipesInUse())
	}
	if grew := rss1 - rss0; grew > 4<<20 {
		t.Errorf("RSS grew by %d KiB during the stall", grew>>10)
	}
	// Near idle: the whole test process used under 10% of one core.
	if used := cpu1 - cpu0; used > 500*time.Millisecond {
		t.Errorf("process used %v of CPU during a 5 s stall", used)
	}
	t.Logf("stall: RSS %+d KiB, CPU %v", (rss1-rss0)>>10, cpu1-cpu0)
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := n + 21*int64(len(chunk)); got != total {
		t.Fatalf("received %d bytes, want %d", got, total)
	}
	want := sha256.New()
	for sent := 0; sent < total; sent += len(block) {
		want.Write(block)
	}
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatal("digest mismatch")
	}
}

func TestManySmallSegmentsSlowThenFast(t *testing.T) {
	const (
		segments = 100000
		segSize  = 100
	)
	seg := randomBlock(segSize, 12)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.(*net.TCPConn).SetNoDelay(true)
		for i := 0; i < segments; i++ {
			if _, err := c.Write(seg); err != nil {
				return
			}
		}
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var got int64
	buf := make([]byte, 4<<10)
	for i := 0; i < 50; i++ {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], bytes.Repeat(seg, 43)[int(got%segSize):int(got%segSize)+n]) {
			t.Fatalf("corrupt bytes at offset %d", got)
		}
		got += int64(n)
		time.Sleep(10 * time.Millisecond) // slow phase of the reader
	}
	rest, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatal(err)
	}
	if got+rest != segments*segSize {
		t.Fatalf("received %d bytes, want %d", got+rest, segments*segSize)
	}
}

func TestChurnReturnsToBaseline(t *testing.T) {
	const (
		conns       = 10000
		concurrency = 64
	)
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	// Warm up once so lazily created loop state is part of the baseline.
	c := dialFE(t, s)
	exchange(c, []byte("warm"))
	c.Close()
	testutil.WaitFor(t, 5*time.Second, "warm-up connection closed", func() bool { return s.ActiveConnections() == 0 })
	fds0, g0 := openFDs(t), runtime.NumGoroutine()

	var wg sync.WaitGroup
	var next atomic.Int64
	payload := randomBlock(64<<10, 13)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 1))
			for next.Add(1) <= conns {
				c, err := net.DialTimeout("tcp", s.Addrs("fe")[0].String(), 5*time.Second)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				tc := c.(*net.TCPConn)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				switch r.IntN(4) {
				case 0: // open and close at once
				case 1: // write, then close without reading: may end in a reset
					tc.Write(payload[:r.IntN(len(payload))])
				case 2: // a full exchange
					p := payload[:r.IntN(len(payload))]
					if got, _, err := exchange(tc, p); err != nil || got != sha256.Sum256(p) {
						t.Errorf("exchange failed: %v", err)
					}
				case 3: // abort with a reset
					tc.Write(payload[:r.IntN(1024)])
					tc.SetLinger(0)
				}
				tc.Close()
			}
		}(uint64(w))
	}
	wg.Wait()
	if t.Failed() {
		c, _ := s.Counters("fe")
		t.Logf("frontend %+v; backend %+v", c, s.Backends("fe")[0].Stats())
	}
	testutil.WaitFor(t, 10*time.Second, "all connections closed", func() bool { return s.ActiveConnections() == 0 })
	settle(t, fds0, g0)
	if n := s.PipesInUse(); n != 0 {
		t.Errorf("%d pipes in use after churn", n)
	}
}

// A loop that stalls between starting a connect and seeing it complete
// finds the connect timer due before the connect's event: the connection
// was made in time, so it relays on that backend connection, with no
// timeout counted and no second connect.
func TestLateLoopKeepsACompletedConnect(t *testing.T) {
	b := startBackend(t, echo)
	cfg := buildConfig(t, config.New().Workers(1).Frontend("fe").Listen("127.0.0.1:0").
		Retries(2).ConnectTimeout(200*time.Millisecond), []netip.AddrPort{b.addr}, nil)
	s := startServer(t, cfg)
	l := s.loops[0]
	// The loop sleeps (task one) while the client's handshake completes in
	// the kernel; task two, queued meanwhile, runs in the next turn, the
	// one that accepts the client and starts the connect, and stalls the
	// loop past connect_timeout before it can see the connect's event.
	stalled := make(chan struct{})
	l.post(func(*loop) {
		close(stalled)
		time.Sleep(300 * time.Millisecond)
	})
	<-stalled
	c := dialFE(t, s)
	l.post(func(*loop) { time.Sleep(500 * time.Millisecond) })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, n, err := exchange(c, []byte("ping")); err != nil || got != sha256.Sum256([]byte("ping")) {
		t.Fatalf("exchange: %d bytes, %v", n, err)
	}
	st := s.Backends("fe")[0].Stats()
	if st.Total != 1 || st.Failures != [backend.NumFailReasons]uint64{} {
		t.Errorf("backend: %d connections, failures %v; want 1 and none", st.Total, st.Failures)
	}
}
