package l4

import (
	"bytes"
	"context"
	"crypto/sha256"
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

// handTo returns a Handoff sender that gives what from sends straight to
// the adopting server to, in this process, and the adoption totals.
// The connection log lines of to may name the addresses of from, which
// its clients came to (see handedAddrs).
func handTo(from, to *Server) (func([]HandoffRecord, []int) error, func() HandoffStats) {
	handedAddrs.Store(to, from.Addrs("fe"))
	var mu sync.Mutex
	var st HandoffStats
	send := func(recs []HandoffRecord, fds []int) error {
		got := to.Adopt(recs, fds)
		mu.Lock()
		st.TCP += got.TCP
		st.Clients += got.Clients
		st.Flows += got.Flows
		st.Refused += got.Refused
		mu.Unlock()
		return nil
	}
	return send, func() HandoffStats { mu.Lock(); defer mu.Unlock(); return st }
}

// stream writes total bytes to c at a steady pace while reading the echo,
// then half-closes and reads to the end: it returns an error unless every
// byte came back, in order, followed by a FIN.
func stream(c *net.TCPConn, total int, seed uint64) error {
	data := randomBlock(total, seed)
	werr := make(chan error, 1)
	go func() {
		const chunk = 16 << 10
		for off := 0; off < total; off += chunk {
			if _, err := c.Write(data[off:min(off+chunk, total)]); err != nil {
				werr <- err
				return
			}
			time.Sleep(4 * time.Millisecond) // a steady rate, not a burst: about a second
		}
		werr <- c.CloseWrite()
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if e := <-werr; e != nil && err == nil {
		err = fmt.Errorf("write: %w", e)
	}
	if err != nil {
		return fmt.Errorf("after %d of %d bytes: %w", n, total, err)
	}
	if n != int64(total) || !bytes.Equal(h.Sum(nil), sha256Of(data)) {
		return fmt.Errorf("%d of %d bytes back, digest match %v", n, total, bytes.Equal(h.Sum(nil), sha256Of(data)))
	}
	return nil
}

// TestHandoffKeepsStreams hands 40 streaming connections and 10 idle ones
// from one server to another in mid-stream: every stream comes back whole
// and in order through the second server, no client sees a reset or an
// early end, the IDs stay, and the first server is left with nothing.
func TestHandoffKeepsStreams(t *testing.T) {
	b := startBackend(t, echo)
	cfg := func() *config.Config { return testConfig(t, []netip.AddrPort{b.addr}, nil) }
	old, nu := startServer(t, cfg()), startServer(t, cfg())
	nu.ReserveIDs(old.NextID() + 1000)
	const streams, idle, size = 40, 10, 2 << 20
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		c := dialFE(t, old)
		c.SetDeadline(time.Now().Add(60 * time.Second))
		go func() { errs <- stream(c, size, uint64(i+100)) }()
	}
	var idlers []*net.TCPConn
	for i := 0; i < idle; i++ {
		c := dialFE(t, old)
		idlers = append(idlers, c)
	}
	testutil.WaitFor(t, 5*time.Second, "every connection relaying", func() bool {
		list, _ := old.Connections("fe", 0, 100)
		n := 0
		for _, c := range list {
			if c.State == "relaying" {
				n++
			}
		}
		return n == streams+idle
	})
	before, _ := old.Connections("fe", 0, 100)
	time.Sleep(100 * time.Millisecond) // let the streams get going: the hand-over is mid-stream
	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := old.Handoff(ctx, send)
	if st.TCP != streams+idle || st.Left != 0 || st.Lost != 0 || adopted().TCP != streams+idle || adopted().Refused != 0 {
		t.Fatalf("handed %+v, adopted %+v; want all %d relayed connections", st, adopted(), streams+idle)
	}
	if n := old.ActiveConnections(); n != 0 {
		t.Errorf("the old server still counts %d connections", n)
	}
	after, _ := nu.Connections("fe", 0, 100)
	ids := func(l []ConnInfo) (out []uint64) {
		for _, c := range l {
			out = append(out, c.ID)
		}
		return out
	}
	// A stream may end before the list is read on a loaded machine; an
	// idle connection may not. Every ID listed after is one listed before,
	// and every idle connection is listed with the ID it had.
	had := make(map[uint64]netip.AddrPort)
	for _, c := range before {
		had[c.ID] = c.Client
	}
	listed := make(map[netip.AddrPort]uint64)
	for _, c := range after {
		if had[c.ID] != c.Client {
			t.Errorf("after the hand-over ID %d is %v, before it was %v", c.ID, c.Client, had[c.ID])
		}
		listed[c.Client] = c.ID
	}
	for _, c := range idlers {
		if _, ok := listed[addrOf(c)]; !ok {
			t.Errorf("idle connection %v is not listed after the hand-over (IDs before %v, after %v)", addrOf(c), ids(before), ids(after))
		}
	}
	for i := 0; i < streams; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// The idle ones still echo, through the new server.
	for i, c := range idlers {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := fmt.Sprintf("idle %d still here", i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("idle connection %d after the hand-over: %q, %v", i, buf, err)
		}
	}
	if got, _ := nu.Counters("fe"); got.Closed[CauseHandoverRefused] != 0 {
		t.Errorf("causes on the new server:%s", causeCounts(got.Closed))
	}
}

// A record the new server cannot adopt (its backend is gone from the
// config) is reset there and counted; the client sees the reset.
func TestHandoffRefusedRecordIsReset(t *testing.T) {
	b, other := startBackend(t, echo), startBackend(t, echo)
	old := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	nu := startServer(t, testConfig(t, []netip.AddrPort{other.addr}, nil))
	c := dialFE(t, old)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st := old.Handoff(ctx, send); st.TCP != 1 || adopted().Refused != 1 {
		t.Fatalf("handed %+v, adopted %+v; want 1 handed, 1 refused", st, adopted())
	}
	if _, err := io.Copy(io.Discard, c); !errors.Is(err, errConnReset) {
		t.Errorf("client of a refused record: %v, want a reset", err)
	}
	waitCause(t, nu, CauseHandoverRefused, 1)
}

// The new process dies in the middle of a batch, after taking the first
// part of it: what it took it keeps serving; the old server takes back the
// records it could not send and keeps serving those and every connection
// not yet detached (they read again and still echo). No client sees a
// reset, and neither server leaves an fd behind.
func TestHandoffFailureKeepsTheRest(t *testing.T) {
	for _, tc := range []struct {
		name string
		sent int // records of the first batch delivered before the failure
	}{{"nothing delivered", 0}, {"part of the batch delivered", 25}} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBackend(t, echo)
			cfg := func() *config.Config { return testConfig(t, []netip.AddrPort{b.addr}, nil) }
			old, nu := startServer(t, cfg()), startServer(t, cfg())
			nu.ReserveIDs(old.NextID() + 1000)
			fds := openFDs(t)
			const n = 300 // more than one batch per loop
			var clients []*net.TCPConn
			for i := 0; i < n; i++ {
				c := dialFE(t, old)
				c.SetDeadline(time.Now().Add(20 * time.Second))
				clients = append(clients, c)
			}
			testutil.WaitFor(t, 5*time.Second, "every client relaying", func() bool { return old.ActiveConnections() == n })
			deliver, _ := handTo(old, nu)
			batches, batch := 0, 0
			send := func(recs []HandoffRecord, fds []int) error {
				batches++
				batch = len(recs)
				k, nfds := tc.sent, 0
				for _, r := range recs[:k] {
					nfds += r.FDs
				}
				if k > 0 {
					if err := deliver(recs[:k], fds[:nfds]); err != nil {
						return err
					}
				}
				return &HandoffSendError{Sent: k, Err: errors.New("the new process is gone")}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st := old.Handoff(ctx, send)
			if batches != 1 || st.TCP != tc.sent || st.Lost != 0 || st.Left != n-tc.sent || batch <= tc.sent {
				t.Fatalf("hand-over %+v after %d batches of %d; want %d handed, none lost, the rest left to drain", st, batches, batch, tc.sent)
			}
			for i, c := range clients {
				msg := fmt.Sprintf("client %d", i)
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatalf("client %d: write: %v", i, err)
				}
				buf := make([]byte, len(msg))
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
					t.Fatalf("client %d after the failed hand-over: %q, %v", i, buf, err)
				}
			}
			if got := old.ActiveConnections(); got != int64(n-tc.sent) {
				t.Errorf("the old server counts %d connections, want %d", got, n-tc.sent)
			}
			if got := nu.ActiveConnections(); got != int64(tc.sent) {
				t.Errorf("the new server counts %d connections, want %d", got, tc.sent)
			}
			for _, c := range clients {
				c.Close()
			}
			testutil.WaitFor(t, 5*time.Second, "every connection closed", func() bool {
				return old.ActiveConnections() == 0 && nu.ActiveConnections() == 0
			})
			for _, s := range []*Server{old, nu} {
				if got, _ := s.Counters("fe"); got.Closed[CauseHandoverRefused] != 0 || got.Closed[CauseShutdown] != 0 {
					t.Errorf("causes:%s", causeCounts(got.Closed))
				}
			}
			settle(t, fds, 1<<30)
		})
	}
}

// With its cap reached, the new server refuses what it cannot take, and
// adopts the rest.
func TestHandoffAdoptsUpToTheCap(t *testing.T) {
	b := startBackend(t, echo)
	old := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	nu := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) { fb.MaxConnections(3) }))
	for i := 0; i < 5; i++ {
		dialFE(t, old)
	}
	testutil.WaitFor(t, 5*time.Second, "every client relaying", func() bool { return old.ActiveConnections() == 5 })
	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st := old.Handoff(ctx, send); st.TCP != 5 || adopted().TCP != 3 || adopted().Refused != 2 {
		t.Fatalf("handed %+v, adopted %+v; want 5 handed, 3 adopted, 2 refused", st, adopted())
	}
	waitCause(t, nu, CauseHandoverRefused, 2)
	if got := nu.ActiveConnections(); got != 3 {
		t.Errorf("the new server counts %d connections, want its cap, 3", got)
	}
}

// A connection handed over gets its connection log line from the adopting
// server at its end, with what the old one knew: its id, the address the
// client came to, the backend and its connect time, the bytes of both
// processes.
func TestHandoffConnLogLine(t *testing.T) {
	b := startBackend(t, echo)
	cfg := func() *config.Config { return testConfig(t, []netip.AddrPort{b.addr}, nil) }
	old, nu := startServer(t, cfg()), startServer(t, cfg())
	nu.ReserveIDs(old.NextID() + 1000)
	c := dialFE(t, old)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	echoed := func(msg string) {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, buf, err)
		}
	}
	echoed("before")
	list, _ := old.Connections("fe", 0, 10)
	if len(list) != 1 {
		t.Fatalf("%d connections on the old server, want 1", len(list))
	}
	id := list[0].ID
	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st := old.Handoff(ctx, send); st.TCP != 1 || adopted().TCP != 1 {
		t.Fatalf("handed %+v, adopted %+v; want the connection", st, adopted())
	}
	echoed("after!!")
	client := c.LocalAddr().(*net.TCPAddr).AddrPort().String()
	c.CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	f := lastLine(t, nu, CauseClientFIN)
	want := map[string]any{
		"connection_id": float64(id), "client": client, "listen": old.Addrs("fe")[0].String(),
		"backend": b.addr.String(), "bytes_in": 13.0, "bytes_out": 13.0,
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %v, want %v", k, f[k], v)
		}
	}
	if cs, ds := f["connect_seconds"].(float64), f["duration_seconds"].(float64); cs <= 0 || ds < cs {
		t.Errorf("connect_seconds %v, duration_seconds %v: the old process's connect time is lost", cs, ds)
	}
	if n, _ := captured(old).withCause(CauseClientFIN); n != 0 {
		t.Errorf("the old server logged %d lines for a connection it handed over", n)
	}
}

// An adopted connection counts against the new server's per-client limit
// and gives its count back when it ends: with a limit of one, the client
// is refused while its handed connection lives and served once it closed.
func TestHandoffReleasesPerClientCount(t *testing.T) {
	b := startBackend(t, echo)
	limit := func(fb *config.FrontendBuilder) { fb.MaxConnectionsPerClient(1) }
	old := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, limit))
	nu := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, limit))
	nu.ReserveIDs(old.NextID() + 1000)
	c := dialFE(t, old)
	echoOnce(t, c, "before")
	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st := old.Handoff(ctx, send); st.TCP != 1 || adopted().TCP != 1 {
		t.Fatalf("handed %+v, adopted %+v; want the one connection", st, adopted())
	}
	echoOnce(t, c, "after")

	// While it lives, a second connection of the client is over the limit.
	// The limit refuses it at accept with a reset, which may reach the
	// client during its connect or at its first read.
	if refused, err := net.DialTimeout("tcp", nu.Addrs("fe")[0].String(), 5*time.Second); err == nil {
		refused.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := refused.Read(make([]byte, 1)); err == nil {
			t.Fatal("a second connection of the client was served while its handed one lived")
		}
		refused.Close()
	}
	waitCause(t, nu, CauseClientLimit, 1)

	c.Close()
	testutil.WaitFor(t, 5*time.Second, "the handed connection ended", func() bool { return nu.ActiveConnections() == 0 })
	if n := nu.frontend("fe").clients.size(); n != 0 {
		t.Errorf("the per-client table holds %d clients after every connection ended", n)
	}
	echoOnce(t, dialFE(t, nu), "served again")
}

// echoOnce writes msg to c and reads it back from the echo backend.
func echoOnce(t *testing.T, c *net.TCPConn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, buf, err)
	}
}

// A connection whose client came in a PROXY header keeps that client, and
// the proxy that sent the header, in the new server's connection list.
func TestHandoffKeepsProxiedClient(t *testing.T) {
	b := startBackend(t, echo)
	old := acceptServer(t, []netip.AddrPort{b.addr}, nil)
	nu := acceptServer(t, []netip.AddrPort{b.addr}, nil)
	nu.ReserveIDs(old.NextID() + 1000)
	client := carried("203.0.113.7:40001")
	c := dialFE(t, old)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(v2Header(client, carried("192.0.2.1:5432"))); err != nil {
		t.Fatal(err)
	}
	echoOnce(t, c, "before")
	send, adopted := handTo(old, nu)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st := old.Handoff(ctx, send); st.TCP != 1 || adopted().TCP != 1 {
		t.Fatalf("handed %+v, adopted %+v; want the one connection", st, adopted())
	}
	echoOnce(t, c, "after")
	conns, _ := nu.Connections("fe", 0, 10)
	if len(conns) != 1 || conns[0].Client != client || conns[0].Via != addrOf(c) {
		t.Errorf("connection list after the hand-over %+v, want client %v via %v", conns, client, addrOf(c))
	}
}
