package l4

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestBackendCapsQueueClients: backends capped at 2 and 3 take 5 of 10
// clients; the other 5 wait without a byte read, and each slot that frees
// goes to the oldest waiter.
func TestBackendCapsQueueClients(t *testing.T) {
	b1, b2 := startBackend(t, greeter), startBackend(t, greeter)
	cfg := testConfig(t, nil, func(fb *config.FrontendBuilder) {
		fb.Backend(b1.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 2}).
			Backend(b2.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 3}).
			QueueTimeout(30 * time.Second)
	})
	s := startServer(t, cfg)
	type client struct {
		c *net.TCPConn
		r *bufio.Reader
	}
	var cl []client
	// One at a time, so the queue order is the order of the clients.
	for i := 0; i < 10; i++ {
		c := dialFE(t, s)
		c.Write([]byte("early bytes"))
		cl = append(cl, client{c, bufio.NewReader(c)})
		want := i + 1
		testutil.WaitFor(t, 5*time.Second, "client taken in", func() bool {
			fc, _ := s.Counters("fe")
			return int(fc.Total) == want
		})
	}
	for i := 0; i < 5; i++ {
		if !greeted(cl[i].c, cl[i].r, 5*time.Second) {
			t.Fatalf("client %d not proxied", i)
		}
	}
	fc, _ := s.Counters("fe")
	if got := b1.accepted.Load() + b2.accepted.Load(); got != 5 || fc.QueuedNow != 5 || fc.Queued != 5 {
		t.Fatalf("backends took %d, queued now %d (total %d); want 5 and 5", got, fc.QueuedNow, fc.Queued)
	}
	// Each departure lets in exactly the oldest waiter, within 100 ms.
	for i := 0; i < 5; i++ {
		cl[i].c.Close()
		start := time.Now()
		if !greeted(cl[5+i].c, cl[5+i].r, 5*time.Second) {
			t.Fatalf("waiter %d not let in after a slot freed", i)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("waiter %d let in after %v, want within 100ms", i, d)
		}
		if got := b1.accepted.Load() + b2.accepted.Load(); got != int64(6+i) {
			t.Fatalf("after %d departures the backends accepted %d, want %d", i+1, got, 6+i)
		}
		// Its early bytes arrive only now, behind the greeting.
		buf := make([]byte, len("early bytes"))
		if _, err := io.ReadFull(cl[5+i].r, buf); err != nil || string(buf) != "early bytes" {
			t.Fatalf("waiter %d echo %q, %v", i, buf, err)
		}
	}
	if fc, _ := s.Counters("fe"); fc.QueuedNow != 0 || fc.QueueTimeouts != 0 {
		t.Errorf("queue now %d, timeouts %d", fc.QueuedNow, fc.QueueTimeouts)
	}
}

func TestQueueTimeoutClosesWaiter(t *testing.T) {
	const qt = 300 * time.Millisecond
	got := make(chan []byte, 4)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		all, _ := io.ReadAll(c)
		got <- all
	})
	cfg := testConfig(t, nil, func(fb *config.FrontendBuilder) {
		fb.Backend(b.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 1}).QueueTimeout(qt)
	})
	s := startServer(t, cfg)
	holder := dialFE(t, s)
	testutil.WaitFor(t, 5*time.Second, "holder connected", func() bool { return b.accepted.Load() == 1 })

	waiter := dialFE(t, s)
	start := time.Now()
	waiter.Write([]byte("must not arrive"))
	waiter.SetDeadline(start.Add(5 * time.Second))
	_, err := waiter.Read(make([]byte, 1))
	d := time.Since(start)
	if !errors.Is(err, errConnReset) {
		t.Fatalf("waiter read: %v, want a reset", err)
	}
	// Never before the timeout; after it, by as much as a loaded machine
	// keeps the loop off the CPU, but well before a second timeout.
	if d < qt*8/10 || d > 2*qt {
		t.Errorf("waiter closed after %v, want %v (from -20%% to +100%%)", d, qt)
	}
	waitCause(t, s, CauseQueueTimeout, 1)
	if fc, _ := s.Counters("fe"); fc.QueueTimeouts != 1 || fc.QueuedNow != 0 {
		t.Errorf("timeouts %d, queued now %d; want 1, 0", fc.QueueTimeouts, fc.QueuedNow)
	}
	holder.CloseWrite()
	select {
	case all := <-got:
		if len(all) != 0 {
			t.Errorf("holder's backend got %q", all)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("holder's connection did not end")
	}
	if n := b.accepted.Load(); n != 1 {
		t.Errorf("backend accepted %d connections: the timed-out waiter reached it", n)
	}
}

// TestCountsReturnToZeroUnderChurn runs 8 loops of churn through every
// level of cap, the wait queue and the per-client table at once; when the
// clients are gone every count is back to 0.
func TestCountsReturnToZeroUnderChurn(t *testing.T) {
	b1, b2 := startBackend(t, echo), startBackend(t, echo)
	cfg, err := config.New().Workers(8).MaxConnections(24).MaxPipes(16).
		Frontend("fe").Listen("127.0.0.1:0").MaxConnections(20).MaxQueue(8).QueueTimeout(200*time.Millisecond).
		MaxConnectionsPerClient(16).
		Backend(b1.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 4}).
		Backend(b2.addr.String(), 2).BackendOpts(config.BackendOptions{MaxConnections: 6}).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg)
	addr := s.Addrs("fe")[0].String()
	done := make(chan struct{})
	const workers, each = 32, 60
	for w := 0; w < workers; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < each; i++ {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				switch (w + i) % 3 {
				case 0:
					c.Write([]byte("ping"))
					io.ReadFull(c, make([]byte, 4))
				case 1:
					c.Write([]byte("bye"))
				}
				c.Close()
			}
		}(w)
	}
	for w := 0; w < workers; w++ {
		<-done
	}
	testutil.WaitFor(t, 10*time.Second, "every count back to 0", func() bool {
		fc, _ := s.Counters("fe")
		return s.ActiveConnections() == 0 && fc.Active == 0 && fc.QueuedNow == 0 &&
			s.Backends("fe")[0].Active() == 0 && s.Backends("fe")[1].Active() == 0 &&
			s.frontends[0].clients.size() == 0 && s.PipesInUse() == 0
	})
	fc, _ := s.Counters("fe")
	t.Logf("accepted %d, queued %d, queue timeouts %d, queue full %d", fc.Total, fc.Queued, fc.QueueTimeouts, fc.QueueFull)
	// No listener is left stopped at a cap: new clients are served.
	for i := 0; i < 4; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if got, _, err := exchange(c, []byte("after")); err != nil || got != [32]byte(sha256Of([]byte("after"))) {
			t.Fatalf("client %d after the churn: %v", i, err)
		}
	}
}

// TestQueueServedWhenCapacityAppears: with backend A at its cap and B out
// of service, clients queue; when B comes back every waiter is served at
// once, not only as A's slots free (which here never happens).
func TestQueueServedWhenCapacityAppears(t *testing.T) {
	testutil.Exclusive(t, "cpu", 5*time.Minute)
	for _, tc := range []struct {
		name      string
		out, back func(b *backend.Backend)
	}{
		{"health up", func(b *backend.Backend) { b.SetHealthy(false) }, func(b *backend.Backend) { b.SetHealthy(true) }},
		{"ready again", func(b *backend.Backend) { b.SetState(backend.Maint) }, func(b *backend.Backend) { b.SetState(backend.Ready) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ba, bb := startBackend(t, greeter), startBackend(t, greeter)
			cfg := testConfig(t, nil, func(fb *config.FrontendBuilder) {
				fb.Backend(ba.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 1}).
					Backend(bb.addr.String(), 1).QueueTimeout(30 * time.Second)
			})
			s := startServer(t, cfg)
			b := s.Backends("fe")[1]
			tc.out(b)
			holder := dialFE(t, s)
			if !greeted(holder, bufio.NewReader(holder), 5*time.Second) {
				t.Fatal("the holder was not served")
			}
			const waiters = 10
			cl := make([]*net.TCPConn, waiters)
			for i := range cl {
				cl[i] = dialFE(t, s)
			}
			testutil.WaitFor(t, 5*time.Second, "every client queued", func() bool {
				fc, _ := s.Counters("fe")
				return fc.QueuedNow == waiters
			})
			start := time.Now()
			tc.back(b)
			servedWithin(t, cl, start, wakeBound)
			if n := bb.accepted.Load(); n != waiters {
				t.Errorf("backend B accepted %d, want %d", n, waiters)
			}
			fc, _ := s.Counters("fe")
			if fc.QueuedNow != 0 || fc.Queued != waiters || fc.QueueTimeouts != 0 {
				t.Errorf("queued now %d, ever %d, timeouts %d; want 0, %d, 0", fc.QueuedNow, fc.Queued, fc.QueueTimeouts, waiters)
			}
			noneEnded(t, s)
			// Every one of them, and the holder, ends as the client closes.
			closeAllClean(t, s, 1+waiters, []*net.TCPConn{holder}, cl)
		})
	}
}
