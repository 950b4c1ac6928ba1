package l4

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// recorder is an Observer that counts what it is told, per backend.
type recorder struct {
	mu        sync.Mutex
	failed    map[*backend.Backend][]backend.FailReason
	resets    map[*backend.Backend]int
	connected map[*backend.Backend]int
}

func newRecorder() *recorder {
	return &recorder{
		failed:    make(map[*backend.Backend][]backend.FailReason),
		resets:    make(map[*backend.Backend]int),
		connected: make(map[*backend.Backend]int),
	}
}

func (r *recorder) ConnectFailed(b *backend.Backend, reason backend.FailReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed[b] = append(r.failed[b], reason)
}

func (r *recorder) Reset(b *backend.Backend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets[b]++
}

func (r *recorder) Served(b *backend.Backend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.connected[b]++
}

func TestObserverHearsOutcomes(t *testing.T) {
	// The live backend resets a client that sends a byte and closes
	// cleanly on one that sends none.
	live := startBackend(t, func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 1)); err == nil {
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	})
	dead := testutil.RefusedAddr(t, "tcp")
	cfg := testConfig(t, []netip.AddrPort{dead, live.addr}, nil)
	s, err := NewServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	if err := s.Observe("fe", rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Observe("nope", rec); err != ErrUnknownFrontend {
		t.Fatalf("Observe unknown: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Observe("fe", rec); err == nil {
		t.Fatal("Observe after Start accepted")
	}
	// Round-robin sends the first client to the dead backend, which
	// refuses; the retry reaches the live one, which resets.
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("x"))
	io.Copy(io.Discard, c)
	testutil.WaitFor(t, 5*time.Second, "connection released", func() bool { return s.ActiveConnections() == 0 })

	bs := s.Backends("fe")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.failed[bs[0]]; len(got) != 1 || got[0] != backend.FailRefused {
		t.Errorf("dead backend failures %v, want [refused]", got)
	}
	if rec.connected[bs[1]] != 0 || rec.resets[bs[1]] != 1 || rec.connected[bs[0]] != 0 {
		t.Errorf("served %v, resets %v", rec.connected, rec.resets)
	}
	rec.mu.Unlock()

	// A clean exchange with the live backend counts as served.
	c = dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.CloseWrite()
	io.Copy(io.Discard, c)
	testutil.WaitFor(t, 5*time.Second, "connection released", func() bool { return s.ActiveConnections() == 0 })
	rec.mu.Lock()
	if rec.connected[bs[1]] != 1 {
		t.Errorf("served %v after a clean close, want 1 for the live backend", rec.connected)
	}
}

func TestCloseBackendConnections(t *testing.T) {
	b1, b2 := startBackend(t, echo), startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b1.addr, b2.addr}, nil))
	var conns []*net.TCPConn
	for i := 0; i < 6; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	target := s.Backends("fe")[0]
	n, err := s.CloseBackendConnections("fe", target)
	if err != nil || n != int(target.Peak()) {
		t.Fatalf("%d connections closed (%v), want the backend's %d", n, err, target.Peak())
	}
	if target.Active() != 0 {
		t.Fatalf("%d connections left on the backend after CloseBackendConnections returned", target.Active())
	}
	if got := s.ActiveConnections(); got != 3 {
		t.Fatalf("%d connections left, want the other backend's 3", got)
	}
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("y")); err == nil {
			if _, err := io.ReadFull(c, make([]byte, 1)); err == nil {
				continue // still relayed: the other backend's
			}
		}
		closed++
	}
	if closed != 3 {
		t.Errorf("%d clients cut, want 3", closed)
	}
}

// TestResetAfterBackendFINIsNotAFailure: a backend that ends a session
// (FIN, then close) and resets a client writing afterwards is behaving
// normally; passive health must not count that reset against it.
func TestResetAfterBackendFINIsNotAFailure(t *testing.T) {
	b := startBackend(t, func(c net.Conn) {
		io.WriteString(c, "bye")
		c.Close()
	})
	rec := newRecorder()
	s := startObserved(t, testConfig(t, []netip.AddrPort{b.addr}, nil), rec)
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v", got, err)
	}
	// The session is over on the backend side; a late write is reset.
	for i := 0; i < 3; i++ {
		if _, err := c.Write([]byte("late")); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // let the reset come back between writes
	}
	testutil.WaitFor(t, 5*time.Second, "connection released", func() bool { return s.ActiveConnections() == 0 })
	be := s.Backends("fe")[0]
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.resets[be] != 0 || be.Stats().Resets != 0 {
		t.Errorf("reset after the backend's FIN counted: observer %d, counter %d", rec.resets[be], be.Stats().Resets)
	}
}
