package l4

import (
	"sync"
	"sync/atomic"

	"github.com/splicerlb/splicer/pkg/backend"
)

// waitQueue is a frontend's FIFO of clients waiting for a backend slot
// while every eligible backend is at its max_connections. Waiters belong to
// their loops; the queue only holds them in order. Its lock is taken on the
// slow path alone: when a client finds every backend full, and when a
// connection to a capped backend ends.
type waitQueue struct {
	mu sync.Mutex
	q  []waiter     // oldest first
	n  atomic.Int64 // len(q), for lock-free reads

	total atomic.Uint64     // clients ever queued
	wait  backend.Histogram // time waiters spent queued before a slot
}

// waiter is a queued connection. id tells a recycled conn struct apart;
// loop and key are copied from the conn when it is queued, because the
// goroutine serving the queue must not read a conn that its loop may be
// recycling meanwhile.
type waiter struct {
	c    *conn
	id   uint64
	loop *loop
	key  uint64
}

// push appends c unless the queue holds max waiters already.
func (q *waitQueue) push(c *conn, max int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) >= max {
		return false
	}
	q.q = append(q.q, waiter{c: c, id: c.id, loop: c.loop, key: c.key})
	q.n.Store(int64(len(q.q)))
	return true
}

// head returns the oldest waiter without taking it.
func (q *waitQueue) head() (waiter, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) == 0 {
		return waiter{}, false
	}
	return q.q[0], true
}

// popHead takes the oldest waiter if it is still w; false when another
// goroutine served it first or it left.
func (q *waitQueue) popHead(w waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) == 0 || q.q[0].c != w.c || q.q[0].id != w.id {
		return false
	}
	q.q[0] = waiter{}
	q.q = q.q[1:]
	q.n.Store(int64(len(q.q)))
	return true
}

// remove drops c from the queue; false when it is not there (a slot for it
// is already on its way).
func (q *waitQueue) remove(c *conn) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.q {
		if w.c == c && w.id == c.id {
			q.q = append(q.q[:i], q.q[i+1:]...)
			q.n.Store(int64(len(q.q)))
			return true
		}
	}
	return false
}

// len is the number of waiters now; one atomic load.
func (q *waitQueue) len() int { return int(q.n.Load()) }

// atCap reports whether some backend could take this client but for its
// max_connections: the case where waiting makes sense. With every backend
// down, draining or in maint a client is closed at once instead.
func (fe *frontend) atCap() bool {
	for _, b := range fe.backends {
		if b.Healthy() && b.State() == backend.Ready && b.MaxConnections() > 0 &&
			b.Active() >= int64(b.MaxConnections()) {
			return true
		}
	}
	return false
}

// slotFreed is called after a connection to b released its slot: when b
// is capped, waiters may take it.
func (fe *frontend) slotFreed(b *backend.Backend) {
	if b.MaxConnections() == 0 {
		return
	}
	fe.serveQueue()
}

// serveQueue hands free backend slots to waiters, oldest first, until the
// queue is empty or no backend has a slot. It runs wherever capacity may
// have appeared: a slot released on a capped backend, any change of the
// backend set (a backend up, ready, re-weighted), a client queued. The
// slot is taken here, on the waiter's behalf and with its balancing key,
// and handed to it on its own loop: a waiter that left meanwhile passes it
// on, so a slot never sits unused while clients wait. Safe from any
// goroutine.
func (fe *frontend) serveQueue() {
	for fe.queue.len() > 0 {
		w, ok := fe.queue.head()
		if !ok {
			return
		}
		b := fe.pick(w.key, nil)
		if b == nil {
			b = fe.acquireAny()
		}
		if b == nil {
			return
		}
		if !fe.queue.popHead(w) {
			// Served by another goroutine, or gone: look again.
			b.Release()
			continue
		}
		if !w.loop.post(func(*loop) { fe.handoff(w, b) }) {
			// The loop has stopped and closed its connections.
			b.Release()
		}
	}
}

// handoff runs on a waiter's loop with the backend slot taken for it.
func (fe *frontend) handoff(w waiter, b *backend.Backend) {
	c := w.c
	if c.id != w.id || c.state != stateQueued {
		// It left (timed out, reset) after it was served, and its struct
		// may already serve another connection, or none.
		b.Release()
		fe.serveQueue()
		return
	}
	c.loop.wheel.Stop(&c.timer)
	c.queueWait = c.since(c.queuedAt)
	c.fe.queue.wait.Observe(c.queueWait)
	c.connectTo(b)
}

// acquireAny takes a slot on any backend that has one, primaries first.
// The snapshot may not yet show a backend that just left its cap
// (snapshots are rebuilt off the releasing goroutine); TryAcquire itself
// enforces state, health and cap.
func (fe *frontend) acquireAny() *backend.Backend {
	for _, backup := range []bool{false, true} {
		for _, b := range fe.backends {
			if b.Backup() == backup && b.TryAcquire() {
				return b
			}
		}
	}
	return nil
}

// enqueue parks c until a backend slot is handed to it or queue_timeout
// passes. Its bytes stay unread in its socket, so none reaches a backend
// if it times out.
func (c *conn) enqueue() {
	fe := c.fe
	if fe.cfg.MaxQueue == 0 || !fe.queue.push(c, fe.cfg.MaxQueue) {
		c.end(CauseQueueFull)
		return
	}
	fe.queue.total.Add(1)
	c.state = stateQueued
	c.queuedAt = c.stampNow()
	c.loop.wheel.Schedule(&c.timer, fe.cfg.QueueTimeout)
	// A slot released between the failed pick and the push woke nobody:
	// look for one now, for whoever is at the head.
	fe.serveQueue()
}
