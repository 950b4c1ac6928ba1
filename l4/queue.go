package l4

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
)

// waitQueue is a frontend's FIFO of clients waiting for a backend slot
// while every eligible backend is at its max_connections. Waiters belong to
// their loops; the queue only holds them in order. Its lock is taken on the
// slow path alone: when a client finds every backend full, and when a
// connection to a capped backend ends.
type waitQueue struct {
	mu sync.Mutex
	q  []waiter // oldest first

	total    atomic.Uint64 // clients ever queued
	timeouts atomic.Uint64 // waiters closed at queue_timeout
	full     atomic.Uint64 // clients closed because the queue was full
	wait     waitHistogram // time waiters spent queued before a slot
}

// QueueWaitBounds are the upper bounds of the queue-wait histogram.
var QueueWaitBounds = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second,
	10 * time.Second, 30 * time.Second,
}

// waitHistogram counts queue waits by bound with atomics; the last bucket
// holds waits above every bound.
type waitHistogram struct {
	buckets [len(QueueWaitBounds) + 1]atomic.Uint64
	sum     atomic.Int64 // nanoseconds
}

func (h *waitHistogram) observe(d time.Duration) {
	i := 0
	for i < len(QueueWaitBounds) && d > QueueWaitBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// QueueWait is a read of the queue-wait histogram: Buckets[i] counts the
// waits at most QueueWaitBounds[i] and above the bound before it (not
// cumulative); the last entry counts those above every bound.
type QueueWait struct {
	Buckets [len(QueueWaitBounds) + 1]uint64
	Sum     time.Duration
}

func (h *waitHistogram) read() QueueWait {
	var w QueueWait
	for i := range h.buckets {
		w.Buckets[i] = h.buckets[i].Load()
	}
	w.Sum = time.Duration(h.sum.Load())
	return w
}

// waiter is a queued connection; id tells a recycled conn struct apart.
type waiter struct {
	c  *conn
	id uint64
}

// push appends c unless the queue holds max waiters already.
func (q *waitQueue) push(c *conn, max int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) >= max {
		return false
	}
	q.q = append(q.q, waiter{c, c.id})
	return true
}

// pushFront puts back a waiter that lost its slot to a race, keeping its
// place at the head of the line.
func (q *waitQueue) pushFront(c *conn) {
	q.mu.Lock()
	q.q = append(q.q, waiter{})
	copy(q.q[1:], q.q)
	q.q[0] = waiter{c, c.id}
	q.mu.Unlock()
}

// pop takes the oldest waiter.
func (q *waitQueue) pop() (waiter, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) == 0 {
		return waiter{}, false
	}
	w := q.q[0]
	q.q[0] = waiter{}
	q.q = q.q[1:]
	return w, true
}

// remove drops c from the queue; false when it is not there (a wake-up for
// it is already on its way).
func (q *waitQueue) remove(c *conn) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.q {
		if w.c == c && w.id == c.id {
			q.q = append(q.q[:i], q.q[i+1:]...)
			return true
		}
	}
	return false
}

// isHead reports whether c is the oldest waiter.
func (q *waitQueue) isHead(c *conn) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q) > 0 && q.q[0].c == c && q.q[0].id == c.id
}

// len is the number of waiters now.
func (q *waitQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q)
}

// atCap reports whether some backend could take this client but for its
// max_connections: the case where waiting makes sense. With every backend
// down, draining or in maint a client is closed at once instead.
func (fe *frontend) atCap() bool {
	for _, b := range fe.set.Backends() {
		if b.Healthy() && b.State() == backend.Ready && b.MaxConnections() > 0 &&
			b.Active() >= int64(b.MaxConnections()) {
			return true
		}
	}
	return false
}

// slotFreed is called after a connection to b released its slot: when b
// is capped, the oldest waiter is woken on its own loop to try again.
func (fe *frontend) slotFreed(b *backend.Backend) {
	if b.MaxConnections() == 0 {
		return
	}
	w, ok := fe.queue.pop()
	if !ok {
		return
	}
	w.c.loop.post(func(*loop) {
		if w.c.id == w.id && w.c.state == stateQueued {
			w.c.dequeued()
			return
		}
		// The waiter left (timed out, reset) after it was popped: pass
		// the wake-up on, or the freed slot would sit unused.
		fe.slotFreed(b)
	})
}

// acquireAny takes a slot on any backend that has one, primaries first.
// A waiter is woken right after a release, when the snapshot may not yet
// show the backend that left its cap (snapshots are rebuilt off the
// releasing goroutine); TryAcquire itself enforces state, health and cap.
func (fe *frontend) acquireAny() *backend.Backend {
	for _, backup := range []bool{false, true} {
		for _, b := range fe.set.Backends() {
			if b.Backup() == backup && b.TryAcquire() {
				return b
			}
		}
	}
	return nil
}

// enqueue parks c until a backend slot frees or queue_timeout passes. Its
// bytes stay unread in its socket, so none reaches a backend if it times
// out.
func (c *conn) enqueue() {
	fe := c.fe
	if fe.cfg.MaxQueue == 0 || !fe.queue.push(c, fe.cfg.MaxQueue) {
		fe.queue.full.Add(1)
		c.close(closeAbort)
		return
	}
	fe.queue.total.Add(1)
	c.state = stateQueued
	c.queuedAt = c.loop.now
	c.loop.wheel.Schedule(&c.timer, fe.cfg.QueueTimeout)
	c.recheck()
}

// recheck closes the window between a waiter's failed pick and its push:
// a slot released in between woke nobody (the queue was empty), so the
// client at the head of the queue looks for a free slot once more, as a
// listener does after raising its blocked flag. Only the head does, so a
// newcomer never takes a slot meant for an older waiter.
func (c *conn) recheck() {
	if !c.fe.queue.isHead(c) {
		return
	}
	b := c.fe.acquireAny()
	if b == nil {
		return
	}
	if c.fe.queue.remove(c) {
		c.loop.wheel.Stop(&c.timer)
		c.fe.queue.wait.observe(c.loop.now.Sub(c.queuedAt))
		c.state = stateConnecting
		c.connectTo(b)
		return
	}
	// A wake-up for c is already on its way: hand the slot to the next
	// waiter instead.
	b.Release()
	c.fe.slotFreed(b)
}

// dequeued runs on c's loop when a slot freed for it.
func (c *conn) dequeued() {
	b := c.fe.pick(c.key, nil)
	if b == nil {
		b = c.fe.acquireAny()
	}
	if b == nil {
		// Another connection took the slot first: back to the head of the
		// line (the timer keeps running), then look once more in case the
		// slot came back meanwhile.
		c.fe.queue.pushFront(c)
		c.recheck()
		return
	}
	c.loop.wheel.Stop(&c.timer)
	c.fe.queue.wait.observe(c.loop.now.Sub(c.queuedAt))
	c.state = stateConnecting
	c.connectTo(b)
}

// queueTimedOut closes a waiter whose queue_timeout passed (close takes it
// out of the queue).
func (c *conn) queueTimedOut() {
	c.fe.queue.timeouts.Add(1)
	c.close(closeAbort)
}
