package health

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/proxyproto"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// after is what an httpServer does once it has answered a request.
type after int

const (
	next    after = iota // read the next request
	hangUp               // close the connection
	silence              // read on and never answer again
	// idle408 waits for the server's idle channel to close, then sends
	// a 408 Request Timeout and closes, as some servers do at their
	// keep-alive timeout.
	idle408
)

// httpServer is a probe target that counts exactly what it sees: the
// connections it accepted, the requests read and their Connection header.
// respond decides each answer from the connection's number (from 1) and
// the request's number on it (from 1); reply "" sends nothing.
type httpServer struct {
	addr     netip.AddrPort
	conns    atomic.Int32
	closed   atomic.Int32 // connections whose handler returned
	requests atomic.Int32
	mu       sync.Mutex
	headers  []string // Connection header of each request
	idle     chan struct{}
}

func newHTTPServer(t *testing.T, proxyHeader bool, respond func(conn, req int) (reply string, then after)) *httpServer {
	t.Helper()
	s := &httpServer{idle: make(chan struct{})}
	s.addr = serve(t, func(c net.Conn) {
		n := int(s.conns.Add(1))
		defer s.closed.Add(1)
		br := bufio.NewReader(c)
		if proxyHeader {
			if h, err := proxyproto.Read(br); err != nil || h.Version != 2 || h.Command != proxyproto.Local {
				return
			}
		}
		for req := 1; ; req++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			s.requests.Add(1)
			s.mu.Lock()
			s.headers = append(s.headers, r.Header.Get("Connection"))
			s.mu.Unlock()
			reply, then := respond(n, req)
			if reply != "" {
				if _, err := io.WriteString(c, reply); err != nil {
					return
				}
			}
			switch then {
			case hangUp:
				return
			case silence:
				_, _ = io.Copy(io.Discard, br)
				return
			case idle408:
				<-s.idle
				_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
				return
			}
		}
	})
	return s
}

func (s *httpServer) connectionHeaders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.headers...)
}

const ok200 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// always answers every request with reply and goes on.
func always(reply string) func(int, int) (string, after) {
	return func(int, int) (string, after) { return reply, next }
}

// checkIn runs one check of addr in sess and asserts its verdict and
// message.
func checkIn(t *testing.T, c Checker, sess *session, addr netip.AddrPort, timeout time.Duration, ok bool, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(withSession(t.Context(), sess), timeout)
	defer cancel()
	r := c.Check(ctx, addr)
	if want := "http probe " + addr.String() + ": " + msg; r.OK != ok || r.Msg != want {
		t.Fatalf("Check = OK %v, %q; want OK %v, %q", r.OK, r.Msg, ok, want)
	}
}

func httpChecker(t *testing.T, keepalive bool, opts ...Option) Checker {
	t.Helper()
	c, err := NewChecker(config.Health{Check: config.CheckHTTP, Path: "/health", Status: 200, HTTPKeepalive: keepalive}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHTTPKeepAliveConnections counts, at the server, the connections and
// requests of ten checks: one connection when it may be kept, one per
// check when it may not.
func TestHTTPKeepAliveConnections(t *testing.T) {
	const checks = 10
	for _, tc := range []struct {
		name      string
		keepalive bool
		reply     string
		conns     int32
		header    string // Connection header of every request
	}{
		{"kept", true, ok200, 1, ""},
		{"failing status kept", true, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", 1, ""},
		{"chunked body kept", true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 1, ""},
		{"interim response skipped", true, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + ok200, 1, ""},
		{"keep-alive off", false, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", checks, "close"},
		{"server says close", true, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", checks, ""},
		{"HTTP/1.0 server", true, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", checks, ""},
		{"body read to its end only", true, "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000), checks, ""},
		{"bytes after the response", true, ok200 + "HTTP/1.1 200 OK\r\n", checks, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newHTTPServer(t, false, always(tc.reply))
			c := httpChecker(t, tc.keepalive)
			want := "GET /health: status 200"
			if strings.Contains(tc.reply, "503") {
				want = "GET /health: status 503, want 200"
			}
			var sess session
			defer sess.close()
			for i := 0; i < checks; i++ {
				checkIn(t, c, &sess, srv.addr, 5*time.Second, !strings.Contains(tc.reply, "503"), want)
			}
			testutil.WaitFor(t, 20*time.Second, "the server to read every request", func() bool { return srv.requests.Load() == checks })
			if n := srv.conns.Load(); n != tc.conns {
				t.Errorf("server accepted %d connections for %d checks, want %d", n, checks, tc.conns)
			}
			if n := sess.opened.Load(); n != uint64(tc.conns) {
				t.Errorf("session counted %d connections opened, want %d", n, tc.conns)
			}
			for i, h := range srv.connectionHeaders() {
				if h != tc.header {
					t.Errorf("request %d: Connection %q, want %q", i+1, h, tc.header)
				}
			}
		})
	}
}

// TestHTTPKeepAliveWithoutSession: a Checker called on its own has nowhere
// to keep a connection, so it asks the server to close each one.
func TestHTTPKeepAliveWithoutSession(t *testing.T) {
	srv := newHTTPServer(t, false, always(ok200))
	c := httpChecker(t, true)
	for i := 0; i < 3; i++ {
		checkResult(t, c, srv.addr, 0, true, "http probe "+srv.addr.String()+": GET /health: status 200")
	}
	testutil.WaitFor(t, 20*time.Second, "three requests", func() bool { return srv.requests.Load() == 3 })
	if n := srv.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
	for _, h := range srv.connectionHeaders() {
		if h != "close" {
			t.Errorf("Connection %q, want close", h)
		}
	}
}

// TestHTTPKeepAliveServerClosed: a server that closes a kept connection,
// idle or with the next request in flight, costs a new connection and
// never a failure; a new connection the server closes without answering
// fails, with no second try.
func TestHTTPKeepAliveServerClosed(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		// Each connection serves one request, then the server closes it
		// as an idle timeout would, without saying so in the response.
		srv := newHTTPServer(t, false, func(int, int) (string, after) { return ok200, hangUp })
		c := httpChecker(t, true)
		var sess session
		defer sess.close()
		for i := 1; i <= 5; i++ {
			// Let the server's FIN arrive first, as it does after an idle
			// timeout: the probe sees it before writing.
			testutil.WaitFor(t, 20*time.Second, "the previous connection closed by the server", func() bool { return srv.conns.Load() == int32(i-1) })
			checkIn(t, c, &sess, srv.addr, 5*time.Second, true, "GET /health: status 200")
		}
		if n, m := srv.conns.Load(), srv.requests.Load(); n != 5 || m != 5 {
			t.Errorf("%d connections, %d requests for 5 checks; want 5 and 5", n, m)
		}
	})
	t.Run("closed with the request in flight", func(t *testing.T) {
		// The server reads the second request of every connection and
		// closes without an answer: the request crossed its idle close.
		srv := newHTTPServer(t, false, func(_, req int) (string, after) {
			if req == 1 {
				return ok200, next
			}
			return "", hangUp
		})
		c := httpChecker(t, true)
		var sess session
		defer sess.close()
		for i := 0; i < 4; i++ {
			checkIn(t, c, &sess, srv.addr, 5*time.Second, true, "GET /health: status 200")
		}
		// Check 1 opens conn 1; each later check loses its request on the
		// kept connection and is answered on a new one.
		testutil.WaitFor(t, 20*time.Second, "every request read", func() bool { return srv.requests.Load() == 7 })
		if n := srv.conns.Load(); n != 4 {
			t.Errorf("%d connections for 4 checks, want 4", n)
		}
		if n := sess.opened.Load(); n != 4 {
			t.Errorf("session counted %d connections, want 4", n)
		}
	})
	t.Run("408 on idle", func(t *testing.T) {
		// Some servers answer an idle timeout with a 408 and close: the
		// unasked response must not be read as the next check's.
		srv := newHTTPServer(t, false, func(conn, _ int) (string, after) {
			if conn == 1 {
				return ok200, idle408
			}
			return ok200, next
		})
		c := httpChecker(t, true)
		var sess session
		defer sess.close()
		checkIn(t, c, &sess, srv.addr, 5*time.Second, true, "GET /health: status 200")
		close(srv.idle)
		testutil.WaitFor(t, 20*time.Second, "the idle connection closed with a 408", func() bool { return srv.closed.Load() == 1 })
		checkIn(t, c, &sess, srv.addr, 5*time.Second, true, "GET /health: status 200")
		if n, m := srv.conns.Load(), srv.requests.Load(); n != 2 || m != 2 {
			t.Errorf("%d connections, %d requests; want 2 and 2", n, m)
		}
	})
	t.Run("fresh connection closed", func(t *testing.T) {
		srv := newHTTPServer(t, false, func(int, int) (string, after) { return "", hangUp })
		c := httpChecker(t, true)
		var sess session
		defer sess.close()
		checkIn(t, c, &sess, srv.addr, 5*time.Second, false, "GET /health: connection closed before a response")
		if n := srv.conns.Load(); n != 1 {
			t.Errorf("%d connections, want 1: a fresh connection is judged, not retried", n)
		}
	})
}

// TestHTTPKeepAliveDetectsFailures: a kept connection still sees a server
// that stops answering (a timeout, no reconnect) and one that died (its
// kept connection closes, the new one is refused).
func TestHTTPKeepAliveDetectsFailures(t *testing.T) {
	t.Run("stops answering", func(t *testing.T) {
		srv := newHTTPServer(t, false, func(_, req int) (string, after) {
			if req == 1 {
				return ok200, next
			}
			return "", silence
		})
		c := httpChecker(t, true)
		var sess session
		defer sess.close()
		checkIn(t, c, &sess, srv.addr, 5*time.Second, true, "GET /health: status 200")
		checkIn(t, c, &sess, srv.addr, 200*time.Millisecond, false, "GET /health: i/o timeout")
		if n := srv.conns.Load(); n != 1 {
			t.Errorf("%d connections, want 1: a timeout is a failure, not a stale connection", n)
		}
		// The timed-out connection is not kept: the next check opens one.
		checkIn(t, c, &sess, srv.addr, 5*time.Second, true, "GET /health: status 200")
		if n := sess.opened.Load(); n != 2 {
			t.Errorf("session counted %d connections, want 2", n)
		}
	})
	t.Run("dies", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := netip.MustParseAddrPort(ln.Addr().String())
		served := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				io.WriteString(c, ok200)
			}
			served <- c
		}()
		c := httpChecker(t, true)
		var sess session
		defer sess.close()
		checkIn(t, c, &sess, addr, 5*time.Second, true, "GET /health: status 200")
		// The process dies: its listener and its connections close.
		ln.Close()
		(<-served).Close()
		checkIn(t, c, &sess, addr, 5*time.Second, false, "GET /health: connection refused")
		if n := sess.opened.Load(); n != 1 {
			t.Errorf("session counted %d connections, want 1", n)
		}
	})
}

// TestHTTPKeepAliveProxyHeader: a backend that reads a PROXY header gets
// one per connection, at its start: a kept connection does not repeat it
// (the server would read it as a broken request).
func TestHTTPKeepAliveProxyHeader(t *testing.T) {
	srv := newHTTPServer(t, true, always(ok200))
	c := httpChecker(t, true, WithProxyHeaders(ProxyHeaders{srv.addr: 2}))
	var sess session
	defer sess.close()
	for i := 0; i < 5; i++ {
		checkIn(t, c, &sess, srv.addr, 5*time.Second, true, "GET /health: status 200")
	}
	if n, m := srv.conns.Load(), srv.requests.Load(); n != 1 || m != 5 {
		t.Errorf("%d connections, %d requests; want 1 connection (one header) and 5 requests", n, m)
	}
}

// TestSchedulerKeepsHTTPConnection: a Scheduler's probes of one backend
// share one connection, which State counts, and which is closed when the
// Scheduler stops.
func TestSchedulerKeepsHTTPConnection(t *testing.T) {
	srv := newHTTPServer(t, false, always(ok200))
	b := newBackend(t, srv.addr)
	s, err := New(fastHealth(10*time.Millisecond), httpChecker(t, true), []*backend.Backend{b}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	testutil.WaitFor(t, 20*time.Second, "ten probes", func() bool { return srv.requests.Load() >= 10 })
	stop()
	st, _ := s.State(b)
	if st.Probes != uint64(srv.requests.Load()) || st.Connections != 1 || srv.conns.Load() != 1 || st.Skipped != 0 {
		t.Errorf("State probes %d, connections %d, skipped %d; server saw %d requests on %d connections; want one connection",
			st.Probes, st.Connections, st.Skipped, srv.requests.Load(), srv.conns.Load())
	}
	testutil.WaitFor(t, 20*time.Second, "the kept connection closed at stop", func() bool { return srv.closed.Load() == 1 })
}
