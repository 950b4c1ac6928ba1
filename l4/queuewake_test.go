package l4

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// wakeBound is how soon after capacity appears every waiter must be
// served (issue 13, item 3). Tests that hold to it take the "cpu" lock
// (testutil.Exclusive): a flood test in another package beside them keeps
// the loops off the CPU for longer than that.
const wakeBound = 100 * time.Millisecond

// passOnBound is how soon a freed slot must reach the next waiter in
// TestQueueWakeUpPassedOn. A lost wake-up leaves that waiter to its
// queue_timeout (30 s there), so a bound far below it tells the defect
// apart, while the chain of a departure (the client's FIN, the backend's
// goroutine closing, the end of the connection) may take more than
// wakeBound on a loaded machine under -race.
const passOnBound = time.Second

// capFullConfig is frontend "fe" with backends a and b, each capped at
// capA and capB, and a queue that does not time out during a test.
func capFullConfig(t *testing.T, a, b *testBackend, capA, capB int) *config.Config {
	return testConfig(t, nil, func(fb *config.FrontendBuilder) {
		fb.Backend(a.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: capA}).
			Backend(b.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: capB}).
			QueueTimeout(30 * time.Second)
	})
}

// holdAndQueue opens holders clients, each greeted (so each holds a
// backend slot), then waiters clients, each queued before the next one
// dials.
func holdAndQueue(t *testing.T, s *Server, holders, waiters int) (held, queued []*net.TCPConn) {
	t.Helper()
	for range holders {
		c := dialFE(t, s)
		if !greeted(c, bufio.NewReader(c), 5*time.Second) {
			t.Fatal("a holder was not served")
		}
		held = append(held, c)
	}
	// One at a time, so the queue order is the order of queued: the
	// frontend's loops accept concurrently.
	for i := range waiters {
		queued = append(queued, dialFE(t, s))
		testutil.WaitFor(t, 5*time.Second, "waiter queued", func() bool {
			fc, _ := s.Counters("fe")
			return fc.QueuedNow == i+1
		})
	}
	return held, queued
}

// servedWithin checks that every client in cl gets its greeting within
// bound of start.
func servedWithin(t *testing.T, cl []*net.TCPConn, start time.Time, bound time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	late := make(chan string, len(cl))
	for i, c := range cl {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !greeted(c, bufio.NewReader(c), 5*time.Second) {
				late <- fmt.Sprintf("waiter %d not served", i)
			} else if d := time.Since(start); d > bound {
				late <- fmt.Sprintf("waiter %d served after %v", i, d)
			}
		}()
	}
	wg.Wait()
	close(late)
	for msg := range late {
		t.Errorf("%s; want every waiter served within %v of the change", msg, bound)
	}
}

// noneEnded checks that frontend "fe" has counted no ended connection.
func noneEnded(t *testing.T, s *Server) {
	t.Helper()
	fc, _ := s.Counters("fe")
	if fc.Closed != [NumCauses]uint64{} {
		t.Errorf("connections ended:%s; want none", causeCounts(fc.Closed))
	}
}

// closeAllClean closes every client with a FIN, after which the greeter
// backends close theirs: each connection ends as client_fin, total of them
// in all, and no other cause is counted.
func closeAllClean(t *testing.T, s *Server, total uint64, cl ...[]*net.TCPConn) {
	t.Helper()
	for _, l := range cl {
		for _, c := range l {
			c.Close()
		}
	}
	got := waitCause(t, s, CauseClientFIN, total)
	got[CauseClientFIN] = 0
	if got != [NumCauses]uint64{} {
		t.Errorf("other causes counted:%s", causeCounts(got))
	}
}

// TestQueueServedWhenCapRaised: both backends capped at 1 and full, 10
// clients queued; raising b's cap to 11 serves all 10 within 100 ms, on b,
// whether the cap is raised by a reload (the path of the config and the
// daemon's SetBackends) or on the running backend, as the reload's commit
// does it.
func TestQueueServedWhenCapRaised(t *testing.T) {
	testutil.Exclusive(t, "cpu", 5*time.Minute)
	const waiters = 10
	for _, tc := range []struct {
		name  string
		raise func(t *testing.T, s *Server, a, b *testBackend)
	}{
		{"reload", func(t *testing.T, s *Server, a, b *testBackend) {
			reload(t, s, capFullConfig(t, a, b, 1, 1+waiters))
		}},
		{"runtime", func(t *testing.T, s *Server, a, b *testBackend) {
			if err := s.Backends("fe")[1].SetMaxConnections(1 + waiters); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ba, bb := startBackend(t, greeter), startBackend(t, greeter)
			s := startServer(t, capFullConfig(t, ba, bb, 1, 1))
			held, queued := holdAndQueue(t, s, 2, waiters)
			start := time.Now()
			tc.raise(t, s, ba, bb)
			servedWithin(t, queued, start, wakeBound)
			if got := s.Backends("fe")[1].MaxConnections(); got != 1+waiters {
				t.Errorf("b's cap is %d, want %d", got, 1+waiters)
			}
			if na, nb := ba.accepted.Load(), bb.accepted.Load(); na != 1 || nb != 1+waiters {
				t.Errorf("a accepted %d, b %d; want 1 and %d", na, nb, 1+waiters)
			}
			fc, _ := s.Counters("fe")
			if fc.QueuedNow != 0 || fc.Queued != waiters || fc.QueueTimeouts != 0 {
				t.Errorf("queued now %d, ever %d, timeouts %d; want 0, %d, 0", fc.QueuedNow, fc.Queued, fc.QueueTimeouts, waiters)
			}
			noneEnded(t, s)
			closeAllClean(t, s, 2+waiters, held, queued)
		})
	}
}

// TestQueueWeightRaiseKeepsWaiters: weights here never gate capacity
// (1..256, a backend at its cap takes nothing whatever its weight), so a
// runtime weight raise on a full backend wakes the queue for nothing: the
// 10 waiters stay queued, in order, none ends and none reaches a backend;
// a cap raised afterwards serves every one of them within 100 ms.
func TestQueueWeightRaiseKeepsWaiters(t *testing.T) {
	testutil.Exclusive(t, "cpu", 5*time.Minute)
	const waiters = 10
	ba, bb := startBackend(t, greeter), startBackend(t, greeter)
	s := startServer(t, capFullConfig(t, ba, bb, 1, 1))
	held, queued := holdAndQueue(t, s, 2, waiters)
	b := s.Backends("fe")[1]
	// The admin API's weight route calls SetWeight, whose snapshot rebuild
	// runs the queue on this goroutine before it returns.
	if err := b.SetWeight(5); err != nil {
		t.Fatal(err)
	}
	if fc, _ := s.Counters("fe"); fc.QueuedNow != waiters {
		t.Errorf("after the weight change %d queued, want %d", fc.QueuedNow, waiters)
	}
	if na, nb := ba.accepted.Load(), bb.accepted.Load(); na != 1 || nb != 1 {
		t.Errorf("a accepted %d, b %d after the weight change; want 1 and 1", na, nb)
	}
	noneEnded(t, s)

	start := time.Now()
	if err := b.SetMaxConnections(1 + waiters); err != nil {
		t.Fatal(err)
	}
	servedWithin(t, queued, start, wakeBound)
	if nb := bb.accepted.Load(); nb != 1+waiters {
		t.Errorf("b accepted %d, want %d", nb, 1+waiters)
	}
	noneEnded(t, s)
	closeAllClean(t, s, 2+waiters, held, queued)
}

// TestQueueWakeUpPassedOn: a wake-up is never absorbed by a waiter that
// does not use it. Two slots freed at once on two backends go to the two
// oldest waiters (the first served, whichever backend it got, does not
// leave the other slot idle), and no more; and a head waiter that resets
// just as a slot frees (before, during or after the slot is taken on its
// behalf) passes the slot to the next waiter, round after round.
func TestQueueWakeUpPassedOn(t *testing.T) {
	testutil.Exclusive(t, "cpu", 5*time.Minute)
	t.Run("two slots at once", func(t *testing.T) {
		const waiters = 10
		ba, bb := startBackend(t, greeter), startBackend(t, greeter)
		s := startServer(t, capFullConfig(t, ba, bb, 1, 1))
		held, queued := holdAndQueue(t, s, 2, waiters)
		start := time.Now()
		var wg sync.WaitGroup
		for _, c := range held {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
		wg.Wait()
		servedWithin(t, queued[:2], start, passOnBound)
		waitCause(t, s, CauseClientFIN, 2)
		if fc, _ := s.Counters("fe"); fc.QueuedNow != waiters-2 {
			t.Errorf("%d still queued, want %d", fc.QueuedNow, waiters-2)
		}
		if na, nb := ba.accepted.Load(), bb.accepted.Load(); na != 2 || nb != 2 {
			t.Errorf("a accepted %d, b %d; want 2 each", na, nb)
		}
		// The rest are still served in order as slots free.
		for i := 2; i < waiters; i++ {
			queued[i-2].Close()
			if !greeted(queued[i], bufio.NewReader(queued[i]), 5*time.Second) {
				t.Fatalf("waiter %d not served after a slot freed", i)
			}
		}
		closeAllClean(t, s, 2+waiters, queued[waiters-2:])
	})

	t.Run("head resets as the slot frees", func(t *testing.T) {
		const rounds = 10
		ba, bb := startBackend(t, greeter), startBackend(t, greeter)
		// b is out of service: a's single slot is the only one.
		s := startServer(t, capFullConfig(t, ba, bb, 1, 1))
		if err := s.Backends("fe")[1].SetState(backend.Maint); err != nil {
			t.Fatal(err)
		}
		held, queued := holdAndQueue(t, s, 1, 2*rounds)
		holder := held[0]
		for r := range rounds {
			gone, next := queued[2*r], queued[2*r+1]
			start := time.Now()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); gone.SetLinger(0); gone.Close() }()
			go func() { defer wg.Done(); holder.Close() }()
			wg.Wait()
			servedWithin(t, []*net.TCPConn{next}, start, passOnBound)
			holder = next
			waitCause(t, s, CauseClientReset, uint64(r+1))
			waitCause(t, s, CauseClientFIN, uint64(r+1))
		}
		fc, _ := s.Counters("fe")
		if fc.QueuedNow != 0 || fc.QueueTimeouts != 0 {
			t.Errorf("queued now %d, timeouts %d; want 0, 0", fc.QueuedNow, fc.QueueTimeouts)
		}
		if n := bb.accepted.Load(); n != 0 {
			t.Errorf("the backend in maint accepted %d", n)
		}
		holder.Close()
		got := waitCause(t, s, CauseClientFIN, rounds+1)
		if got[CauseClientReset] != rounds || got[CauseQueueTimeout] != 0 || got[CauseQueueFull] != 0 {
			t.Errorf("causes:%s; want %d client_reset and %d client_fin", causeCounts(got), rounds, rounds+1)
		}
	})
}
