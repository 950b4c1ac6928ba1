package l4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// These tests pin down how a connection ends: what is delivered when a
// socket fails, which peer gets a reset and which a FIN, and the one
// termination cause each ending is counted under.

// replyThenReset is a backend that reads part of a request, answers and
// closes with the rest of the request unread: its kernel sends the answer,
// then a reset instead of a FIN (PostgreSQL's FATAL, an HTTP 413, a Redis
// protocol error all look like this on the wire).
func replyThenReset(reply []byte, finFirst bool) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		io.ReadFull(c, make([]byte, 4))
		time.Sleep(50 * time.Millisecond) // the rest of the request arrives meanwhile
		c.Write(reply)
		if finFirst {
			c.(*net.TCPConn).CloseWrite()
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// askAndRead sends request and reads until the end of the stream: what it
// got, and nil for a FIN or the error that ended it.
func askAndRead(addr string, request []byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(request); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return io.ReadAll(c)
}

// checkReplies runs n clients against addr, at most 50 at a time, and
// checks that each got exactly reply and then wantErr (nil: a FIN).
func checkReplies(t *testing.T, addr string, n int, reply []byte, wantErr error) {
	t.Helper()
	request := randomBlock(2000, 21)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		bad  int
		last string
	)
	sem := make(chan struct{}, 50)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			got, err := askAndRead(addr, request)
			ok := bytes.Equal(got, reply) && (errors.Is(err, wantErr) || err == wantErr)
			if !ok {
				mu.Lock()
				bad++
				last = fmt.Sprintf("%d of %d bytes (equal %v), then %v", len(got), len(reply), bytes.Equal(got, reply[:min(len(got), len(reply))]), err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if bad != 0 {
		t.Errorf("%d of %d clients did not get the whole reply and then %v; last: %s", bad, n, wantErr, last)
	}
}

// A backend that answers and then resets: every client gets every byte of
// the answer, then the reset, exactly as it would directly. The backend
// sent data first, so passive health hears of a served backend, not of a
// failure.
func TestReplyBeforeResetIsDelivered(t *testing.T) {
	reply := randomBlock(3600, 22)
	b := startBackend(t, replyThenReset(reply, false))
	// The same clients straight to the backend, to pin what "exactly as
	// directly" means on this kernel.
	checkReplies(t, b.addr.String(), 20, reply, errConnReset)

	rec := newRecorder()
	s := startObserved(t, testConfig(t, []netip.AddrPort{b.addr}, nil), rec)
	const clients = 200
	checkReplies(t, s.Addrs("fe")[0].String(), clients, reply, errConnReset)
	waitCause(t, s, CauseBackendReset, clients)
	be := s.Backends("fe")[0]
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.resets[be] != 0 || rec.connected[be] != clients {
		t.Errorf("passive health heard %d resets and %d served, want 0 and %d", rec.resets[be], rec.connected[be], clients)
	}
	if st := be.Stats(); st.Resets != clients || st.Closed[CauseBackendReset] != clients {
		t.Errorf("backend counted %d resets, %d closed by backend_reset; want %d", st.Resets, st.Closed[CauseBackendReset], clients)
	}
}

// A backend that answers, sends its FIN and only then resets (the client
// kept writing): the client sees the whole answer and a clean end.
func TestFINBeforeResetEndsCleanly(t *testing.T) {
	reply := randomBlock(3600, 23)
	b := startBackend(t, replyThenReset(reply, true))
	checkReplies(t, b.addr.String(), 10, reply, nil)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	const clients = 50
	checkReplies(t, s.Addrs("fe")[0].String(), clients, reply, nil)
	waitCause(t, s, CauseBackendFIN, clients)
}

// The other direction: a client that resets after sending. Every byte the
// proxy had accepted from it reaches the backend, which then gets the
// reset.
func TestClientBytesBeforeResetAreDelivered(t *testing.T) {
	const size = 200 << 10
	payload := randomBlock(size, 24)
	start := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(start) }) }
	t.Cleanup(release)
	type result struct {
		got []byte
		err error
	}
	results := make(chan result, 1)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		<-start // read only after the client's reset, from the proxy's queues
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		results <- result{got, err}
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	// Every byte acknowledged by the proxy: from here on, losing one
	// would be the proxy's doing.
	testutil.WaitFor(t, 5*time.Second, "the proxy acknowledged every byte", func() bool { return unacked(t, c) == 0 })
	c.SetLinger(0)
	c.Close()
	testutil.WaitFor(t, 5*time.Second, "the proxy saw the reset", func() bool {
		seen := true
		s.eachLoop(func(l *loop) {
			for x := range l.liveConns() {
				seen = seen && x.failed != 0
			}
		})
		return seen
	})
	release()
	r := <-results
	if !bytes.Equal(r.got, payload) || !errors.Is(r.err, errConnReset) {
		t.Fatalf("backend got %d of %d bytes (equal %v), then %v; want all, then a reset",
			len(r.got), size, bytes.Equal(r.got, payload[:min(len(r.got), size)]), r.err)
	}
	waitCause(t, s, CauseClientReset, 1)
}

// unacked is the number of bytes c has sent that its peer has not
// acknowledged.
func unacked(t testing.TB, c *net.TCPConn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := -1
	raw.Control(func(fd uintptr) { n, err = ioctlOutq(int(fd)) })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// downloadTo starts a backend that streams without end and a client that
// has read some of it; it returns the client and a channel that gets the
// error the backend's writes ended with.
func download(t *testing.T, mutate func(*config.FrontendBuilder)) (*Server, *net.TCPConn, chan error) {
	t.Helper()
	block := randomBlock(64<<10, 25)
	backendErr := make(chan error, 1)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		for {
			if _, err := c.Write(block); err != nil {
				backendErr <- err
				return
			}
		}
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, mutate))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	return s, c, backendErr
}

// readUntilEnd reads c until an error and returns it: nil for a FIN.
func readUntilEnd(c *net.TCPConn) error {
	_, err := io.Copy(io.Discard, c)
	return err
}

// A cut stream never looks complete: each way splicer cuts a download
// mid-stream ends it with a reset on both sides, under its own cause.
func TestCutDownloadsEndWithReset(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*config.FrontendBuilder)
		cut    func(t *testing.T, s *Server, c *net.TCPConn)
		cause  Cause
	}{{
		name: "admin kill",
		cut: func(t *testing.T, s *Server, c *net.TCPConn) {
			conns, _ := s.Connections("fe", 0, 10)
			if len(conns) != 1 {
				t.Fatalf("%d connections listed, want 1", len(conns))
			}
			if err := s.CloseConnection(conns[0].ID); err != nil {
				t.Fatal(err)
			}
		},
		cause: CauseAdminKill,
	}, {
		name: "shutdown deadline",
		cut: func(t *testing.T, s *Server, c *net.TCPConn) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown: %v, want the deadline", err)
			}
		},
		cause: CauseShutdown,
	}, {
		name:   "half-close timeout",
		mutate: func(fb *config.FrontendBuilder) { fb.HalfCloseTimeout(300 * time.Millisecond) },
		cut: func(t *testing.T, s *Server, c *net.TCPConn) {
			// The client is done sending and stops reading: the backend's
			// stream stalls with one direction ended.
			c.CloseWrite()
		},
		cause: CauseHalfCloseTimeout,
	}, {
		name:   "idle timeout",
		mutate: func(fb *config.FrontendBuilder) { fb.IdleTimeout(300 * time.Millisecond) },
		cut:    func(t *testing.T, s *Server, c *net.TCPConn) {}, // the client stops reading
		cause:  CauseIdleTimeout,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, backendErr := download(t, tc.mutate)
			tc.cut(t, s, c)
			if tc.name != "shutdown deadline" {
				waitCause(t, s, tc.cause, 1)
			}
			if err := readUntilEnd(c); !errors.Is(err, errConnReset) {
				t.Errorf("client: %v, want a reset", err)
			}
			select {
			case err := <-backendErr:
				if !errors.Is(err, errConnReset) && !errors.Is(err, errPipe) {
					t.Errorf("backend: %v, want a reset", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("backend still writing 5 s after the cut")
			}
			if tc.name == "shutdown deadline" {
				if c, _ := s.Counters("fe"); c.Closed[CauseShutdown] != 1 {
					t.Errorf("causes:%s, want shutdown=1", causeCounts(c.Closed))
				}
				checkLogLines(t, s, CauseShutdown, 1)
			}
		})
	}
}

// A reset must not overtake the bytes queued for the other peer: after a
// backend's reset, a slow client still gets the whole answer, which the
// proxy holds in its carrier and in the kernel's send queue towards the
// client, and only then the reset.
func TestSlowClientGetsEverythingBeforeReset(t *testing.T) {
	const size = 1 << 20
	reply := randomBlock(size, 26)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		io.ReadFull(c, make([]byte, 4))
		c.Write(reply)
		// Close only once the proxy has acknowledged every byte, so that
		// the reset the unread request causes loses nothing of the
		// backend's own; what happens next is the proxy's doing.
		tc := c.(*net.TCPConn)
		deadline := time.Now().Add(10 * time.Second)
		for unacked(t, tc) > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // polling the backend's kernel queue
		}
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(randomBlock(2000, 27)); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	buf := make([]byte, 32<<10)
	var err error
	for {
		var n int
		n, err = c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond) // a slow reader is the case under test
	}
	if !bytes.Equal(got.Bytes(), reply) || !errors.Is(err, errConnReset) {
		t.Fatalf("client got %d of %d bytes (equal %v), then %v; want all, then a reset",
			got.Len(), size, bytes.Equal(got.Bytes(), reply[:min(got.Len(), size)]), err)
	}
	waitCause(t, s, CauseBackendReset, 1)
}

// A client that resets while it waits for a backend: with bytes sent, they
// are delivered once it gets one, then the reset, as had it reset a moment
// later; without, it leaves the queue at once.
func TestClientResetWhileQueued(t *testing.T) {
	got := make(chan churnResult, 4)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		all, err := io.ReadAll(c)
		got <- churnResult{all, err}
	})
	cfg := testConfig(t, nil, func(fb *config.FrontendBuilder) {
		fb.Backend(b.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 1}).QueueTimeout(30 * time.Second)
	})
	s := startServer(t, cfg)
	holder := dialFE(t, s)
	testutil.WaitFor(t, 5*time.Second, "the holder connected", func() bool { return b.accepted.Load() == 1 })

	silent, talker := dialFE(t, s), dialFE(t, s)
	testutil.WaitFor(t, 5*time.Second, "both queued", func() bool {
		fc, _ := s.Counters("fe")
		return fc.QueuedNow == 2
	})
	if _, err := talker.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the proxy acknowledged them", func() bool { return unacked(t, talker) == 0 })
	for _, c := range []*net.TCPConn{silent, talker} {
		c.SetLinger(0)
		c.Close()
	}
	testutil.WaitFor(t, 5*time.Second, "the silent client gone", func() bool {
		fc, _ := s.Counters("fe")
		return fc.QueuedNow == 1 && fc.Closed[CauseClientReset] == 1
	})
	holder.Close()
	if r := <-got; len(r.got) != 0 || r.err != nil {
		t.Fatalf("the holder's backend got %q, %v", r.got, r.err)
	}
	select {
	case r := <-got:
		if string(r.got) != "last words" || !errors.Is(r.err, errConnReset) {
			t.Fatalf("backend got %q, then %v; want the client's words, then a reset", r.got, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reset client's bytes never reached the backend")
	}
	waitCause(t, s, CauseClientReset, 2)
	if n := b.accepted.Load(); n != 2 {
		t.Errorf("backend accepted %d connections, want 2 (the holder, the talker)", n)
	}
}

// Each remaining way a TCP connection ends, counted under its own cause
// and nothing else; the client sees a FIN for a clean end, a reset for
// every other.
func TestEveryCauseCounted(t *testing.T) {
	greetAndClose := func(c net.Conn) {
		io.WriteString(c, "bye\n")
		c.Close()
	}
	cases := []struct {
		name    string
		backend func(net.Conn)
		mutate  func(*config.FrontendBuilder)
		setup   func(t *testing.T, s *Server)
		client  func(t *testing.T, s *Server) error // the end the client saw
		cause   Cause
		n       uint64
	}{{
		name: "client FIN first", backend: echo,
		client: func(t *testing.T, s *Server) error {
			c := dialFE(t, s)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _, err := exchange(c, []byte("ping"))
			return err
		},
		cause: CauseClientFIN, n: 1,
	}, {
		name: "backend FIN first", backend: greetAndClose,
		client: func(t *testing.T, s *Server) error {
			c := dialFE(t, s)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := io.ReadAll(c)
			c.Close()
			return err
		},
		cause: CauseBackendFIN, n: 1,
	}, {
		name: "no backend", backend: echo,
		setup: func(t *testing.T, s *Server) { s.Backends("fe")[0].SetHealthy(false) },
		client: func(t *testing.T, s *Server) error {
			return dialAndRead(s.Addrs("fe")[0].String())
		},
		cause: CauseNoBackend, n: 1,
	}, {
		name: "queue full", backend: echo,
		mutate: func(fb *config.FrontendBuilder) {
			fb.BackendOpts(config.BackendOptions{MaxConnections: 1}).MaxQueue(1).QueueTimeout(10 * time.Second)
		},
		client: func(t *testing.T, s *Server) error {
			dialFE(t, s) // holds the one slot
			dialFE(t, s) // holds the one place in the queue
			testutil.WaitFor(t, 5*time.Second, "the queue full", func() bool {
				fc, _ := s.Counters("fe")
				return fc.QueuedNow == 1
			})
			return dialAndRead(s.Addrs("fe")[0].String())
		},
		cause: CauseQueueFull, n: 1,
	}, {
		name: "access list", backend: echo,
		mutate: func(fb *config.FrontendBuilder) { fb.Deny("127.0.0.1") },
		client: func(t *testing.T, s *Server) error { return dialAndRead(s.Addrs("fe")[0].String()) },
		cause:  CauseDenied, n: 1,
	}, {
		name: "per-client limit", backend: echo,
		mutate: func(fb *config.FrontendBuilder) { fb.MaxConnectionsPerClient(1) },
		client: func(t *testing.T, s *Server) error {
			first := dialFE(t, s)
			first.Write([]byte("x"))
			first.SetDeadline(time.Now().Add(5 * time.Second))
			io.ReadFull(first, make([]byte, 1))
			return dialAndRead(s.Addrs("fe")[0].String())
		},
		cause: CauseClientLimit, n: 1,
	}, {
		name: "rate limit", backend: echo,
		mutate: func(fb *config.FrontendBuilder) { fb.ConnectionRatePerClient(1) },
		client: func(t *testing.T, s *Server) error {
			dialFE(t, s)
			// Admitted first, whichever loop accepts which connection.
			testutil.WaitFor(t, 5*time.Second, "the first client admitted", func() bool {
				fc, _ := s.Counters("fe")
				return fc.Total == 1
			})
			return dialAndRead(s.Addrs("fe")[0].String())
		},
		cause: CauseRateLimit, n: 1,
	}, {
		name: "backend down, on_down close", backend: echo,
		client: func(t *testing.T, s *Server) error {
			c := dialFE(t, s)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("x"))
			io.ReadFull(c, make([]byte, 1))
			if n, err := s.CloseBackendConnections("fe", s.Backends("fe")[0]); err != nil || n != 1 {
				t.Fatalf("CloseBackendConnections: %d closed, %v", n, err)
			}
			_, err := io.Copy(io.Discard, c)
			return err
		},
		cause: CauseBackendDown, n: 1,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBackend(t, tc.backend)
			s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, tc.mutate))
			if tc.setup != nil {
				tc.setup(t, s)
			}
			err := tc.client(t, s)
			switch {
			case tc.cause.Clean() && err != nil:
				t.Errorf("client: %v, want a clean end", err)
			case !tc.cause.Clean() && !errors.Is(err, errConnReset):
				t.Errorf("client: %v, want a reset", err)
			}
			got := waitCause(t, s, tc.cause, tc.n)
			got[tc.cause] = 0
			if got != [NumCauses]uint64{} {
				t.Errorf("other causes counted:%s", causeCounts(got))
			}
		})
	}
}
