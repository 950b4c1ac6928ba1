package l4

import (
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/netpoll"
	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/splice"
	"github.com/splicerlb/splicer/l4/internal/timer"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

const (
	// tick is the timing wheel resolution: timeouts fire at most one tick
	// late, and an idle loop wakes at most this often while timers are armed.
	tick = 10 * time.Millisecond
	// wheelSlots covers 5.12 s per revolution; longer timeouts take rounds.
	wheelSlots = 512
	// maxEvents bounds one epoll_wait batch.
	maxEvents = 256
	// yieldEvery is how often a working loop passes through the Go
	// scheduler. sysmon preempts a goroutine that has not been scheduled
	// for 10 ms, and a loop whose syscalls return to it without a trip
	// through the scheduler never is: without a yield, every busy loop
	// took a preemption signal or had its P retaken every 10 ms, and each
	// time sysmon went back to waking every 20 µs. See "Yielding on
	// purpose" in docs/architecture.md.
	yieldEvery = 5 * time.Millisecond
)

// handler is whatever owns an fd registered with a loop's poller: a
// listener or a connection. side says which of the owner's fds fired.
type handler interface {
	onEvent(ev uint32, side uint32)
}

// resumer is a handler with work left after using its per-wake-up budget;
// the loop calls resume once the current batch of events is handled.
type resumer interface {
	resume()
}

// The loop's handlers: every type it dispatches events to, and those that
// carry work over to the next turn.
var (
	_ handler = (*listener)(nil)
	_ handler = (*conn)(nil)
	_ handler = (*udpListener)(nil)
	_ handler = (*flow)(nil)
	_ handler = (*sink)(nil)
	_ resumer = (*listener)(nil)
	_ resumer = (*conn)(nil)
)

// slot binds an epoll token to its handler. gen changes every time the slot
// is freed, so an event carrying an older gen belongs to a closed fd.
type slot struct {
	gen uint32
	h   handler
}

// freeList keeps closed structs of one kind for reuse, so that a loop
// under churn allocates none. Only its loop touches it.
type freeList[T any] []*T

// get takes a kept struct, or returns nil when none is kept.
func (f *freeList[T]) get() *T {
	n := len(*f)
	if n == 0 {
		return nil
	}
	x := (*f)[n-1]
	(*f)[n-1] = nil
	*f = (*f)[:n-1]
	return x
}

// put keeps x, which its caller has cleared, for a later get.
func (f *freeList[T]) put(x *T) { *f = append(*f, x) }

// loop is one event loop goroutine and everything it owns: the poller, the
// timing wheel, a pipe cache, its listeners and its connections. Only the
// loop goroutine touches these; other goroutines use post.
type loop struct {
	id    int
	srv   *Server
	poll  *netpoll.Poller
	wheel *timer.Wheel
	pipes *splice.Cache
	now   time.Time // read once per wake-up

	// slots hold every handler with fds in the poller (listeners, TCP
	// connections, UDP flows), indexed by the epoll token; they are also
	// the list of live connections (liveConns), which costs nothing more
	// per connection.
	slots []slot
	free  []uint32 // free slot indexes

	listeners []*listener
	connPool  freeList[conn] // closed connections kept for reuse
	again     []resumer      // work carried over to the next iteration

	udp      []*udpListener             // UDP frontend sockets, with their flows
	flowPool freeList[flow]             // closed flows kept for reuse
	sinks    map[*backend.Backend]*sink // responses = 0 sockets, by backend
	recv     *sock.Batch                // receive batch shared by the UDP sockets
	// replies holds replies to the clients of one UDP socket at a time,
	// replyLn, sent with one sendmmsg at the end of the turn or when
	// another socket's reply comes; replyBE is the backend each came from.
	replies *sock.Batch
	replyLn *udpListener
	replyBE [udpBatch]*backend.Backend

	// hdrBuf is where PROXY headers are peeked at (proxy.go); nil until
	// the first.
	hdrBuf []byte
	// ring holds this loop's connection log records for the writer;
	// nil until the first one (see logRing).
	ring *logRing

	// cpu is the CPU the loop's thread is pinned to, noCPU when it is not
	// (affinity.go); tid is that thread's ID once pinned.
	cpu int
	tid int

	exited chan struct{} // closed when run returns

	mu      sync.Mutex // guards tasks and done
	tasks   []func(*loop)
	spare   []func(*loop)
	done    bool // set under mu when the loop stopped: post refuses tasks
	stopped bool // the loop goroutine's own copy of done
}

func newLoop(id int, s *Server) (*loop, error) {
	p, err := netpoll.New()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &loop{
		id:     id,
		srv:    s,
		poll:   p,
		wheel:  timer.New(tick, wheelSlots, now),
		pipes:  s.pipes.NewCache(),
		now:    now,
		exited: make(chan struct{}),
		cpu:    noCPU,
	}, nil
}

// post queues f to run on the loop goroutine and wakes the loop. It
// reports false, dropping f, when the loop has stopped: f will never run.
func (l *loop) post(f func(*loop)) bool {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return false
	}
	l.tasks = append(l.tasks, f)
	l.mu.Unlock()
	// An error here means the poller is closed, which happens only after
	// done is set: the task is already queued and stop drops it.
	_ = l.poll.Wake()
	return true
}

// run is the loop goroutine. It returns after stop has closed everything.
// A pinned loop first binds its thread to its CPU and sends the outcome on
// pinned (affinity.go).
func (l *loop) run(wg *sync.WaitGroup, pinned chan<- error) {
	defer wg.Done()
	defer close(l.exited)
	if l.cpu == noCPU {
		l.serve()
		return
	}
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread's mask is the one taskset -p and
		// /proc/PID/status show for the whole process: leave it alone.
		// Held here, it cannot take the goroutine that runs the loop.
		done := make(chan struct{})
		go l.runPinned(pinned, done)
		<-done
		runtime.UnlockOSThread()
		return
	}
	l.runPinned(pinned, nil)
}

// runPinned pins the calling goroutine's thread to the loop's CPU and
// serves; it closes done, when not nil, once the loop has stopped.
func (l *loop) runPinned(pinned chan<- error, done chan<- struct{}) {
	if done != nil {
		defer close(done)
	}
	// Never unlocked: when the loop ends, its thread ends with it instead
	// of going back to the scheduler with a one-CPU mask.
	runtime.LockOSThread()
	pinned <- l.pin()
	l.serve()
}

// serve runs the loop until it stops.
func (l *loop) serve() {
	events := make([]unix.EpollEvent, maxEvents)
	yielded := time.Now()
	for !l.stopped {
		timeout := l.waitTimeout()
		n, err := l.poll.Wait(events, timeout)
		if err != nil {
			l.srv.log.Error().Err(err).Int("loop", l.id).Msg("epoll_wait failed; loop stopping")
			l.stop()
			break
		}
		// Advance before dispatching: the wheel measures new timers from
		// the time of its last Advance, which must be this wake-up's.
		l.now = time.Now()
		l.wheel.Advance(l.now)
		for i := 0; i < n; i++ {
			l.dispatch(&events[i])
		}
		l.runAgain()
		l.runTasks()
		l.flushReplies()
		if (n > 0 || timeout == 0) && l.now.Sub(yielded) >= yieldEvery {
			// After the turn's work, so the events that woke the loop
			// are not kept waiting by it.
			yielded = l.now
			runtime.Gosched()
		}
	}
}

// waitTimeout is the epoll_wait timeout: zero while work is carried over,
// else the time to the next armed timer, rounded up to a millisecond.
func (l *loop) waitTimeout() int {
	if len(l.again) > 0 {
		return 0
	}
	d := l.wheel.Next(time.Now())
	if d < 0 {
		return -1
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

func (l *loop) dispatch(ev *unix.EpollEvent) {
	idx, tag := netpoll.SplitToken(netpoll.EventData(ev))
	if int(idx) >= len(l.slots) {
		return
	}
	s := &l.slots[idx]
	if s.h == nil || s.gen != tag>>1 {
		return // the fd was closed earlier in this batch
	}
	s.h.onEvent(ev.Events, tag&1)
}

// runAgain resumes the handlers that ran out of budget. Each gets one more
// turn per iteration; those still unfinished queue themselves again.
func (l *loop) runAgain() {
	if len(l.again) == 0 {
		return
	}
	batch := l.again
	l.again = nil
	for i, r := range batch {
		batch[i] = nil
		r.resume()
	}
	if l.again == nil {
		l.again = batch[:0]
	}
}

func (l *loop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.mu.Unlock()
	for i, f := range tasks {
		f(l)
		tasks[i] = nil
	}
	l.spare = tasks
}

// liveConns yields the loop's live TCP connections, in slot order. One
// that ends during the walk is not yielded after it; one that starts
// during it may or may not be, as with a range over a map.
func (l *loop) liveConns() iter.Seq[*conn] {
	return func(yield func(*conn) bool) {
		for i := 0; i < len(l.slots); i++ {
			if c, ok := l.slots[i].h.(*conn); ok && !yield(c) {
				return
			}
		}
	}
}

// alloc reserves a slot for h and returns its index and generation.
func (l *loop) alloc(h handler) (uint32, uint32) {
	var idx uint32
	if n := len(l.free); n > 0 {
		idx = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		idx = uint32(len(l.slots))
		l.slots = append(l.slots, slot{})
	}
	l.slots[idx].h = h
	return idx, l.slots[idx].gen
}

// release frees a slot; events already queued for it become stale.
func (l *loop) releaseSlot(idx uint32) {
	s := &l.slots[idx]
	s.h = nil
	s.gen = (s.gen + 1) & (1<<31 - 1)
	l.free = append(l.free, idx)
}

// token is the epoll data for side of the handler in slot idx.
func token(idx, gen, side uint32) uint64 {
	return netpoll.Token(idx, gen<<1|side)
}

// adopt makes fd, a listening socket of fe's protocol bound to bound, one
// of this loop's listeners. On error fd is closed.
func (l *loop) adopt(fe *frontend, fd int, bound netip.AddrPort) error {
	if fe.cfg.Protocol == config.ProtocolUDP {
		ln, err := newUDPListener(l, fe, fd, bound)
		if err != nil {
			return err
		}
		l.udp = append(l.udp, ln)
		return nil
	}
	// New connections whose SYN this loop's CPU processed come here. An
	// unpinned loop clears the setting, which a socket inherited from a
	// process with pinned loops still carries: its CPU may now be served
	// by another loop, or by none.
	if err := sock.SetIncomingCPU(fd, l.cpu); err != nil {
		unix.Close(fd)
		return fmt.Errorf("global.cpu_affinity: steering %v to CPU %d: %w", bound, l.cpu, err)
	}
	ln, err := newListener(l, fe, fd, bound)
	if err != nil {
		return err
	}
	l.listeners = append(l.listeners, ln)
	return nil
}

// resumeFull restarts the listeners of fe (nil: of every frontend) that
// stopped at a connection cap.
func (l *loop) resumeFull(fe *frontend) {
	for _, ln := range l.listeners {
		ln.resumeFull(fe)
	}
}

// closeListeners stops accepting on this loop; queued clients that were
// never accepted are refused by the kernel. UDP sockets stop opening flows
// and close once their last flow ended: the replies leave through them.
func (l *loop) closeListeners() {
	for _, ln := range l.listeners {
		ln.close()
	}
	l.listeners = nil
	for _, ln := range l.udp {
		ln.drain()
	}
}

// stop closes every connection and listener and ends the loop.
func (l *loop) stop() {
	if l.stopped {
		return
	}
	l.closeListeners()
	for c := range l.liveConns() {
		c.end(CauseShutdown)
	}
	l.closeUDP()
	l.stopped = true
	l.mu.Lock()
	l.done = true
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	// Tasks posted before the stop still run, on a loop with nothing
	// left: a slot handed to a waiter is released by it.
	for _, f := range tasks {
		f(l)
	}
	l.release()
}

// closeUDP closes every flow, UDP socket and sink of the loop.
func (l *loop) closeUDP() {
	for _, ln := range l.udp {
		ln.close()
	}
	l.udp = nil
	for b, s := range l.sinks {
		s.close(l)
		delete(l.sinks, b)
	}
}

// release frees the loop's own resources: idle pipes and the poller.
func (l *loop) release() {
	for _, ln := range l.listeners {
		ln.close()
	}
	l.listeners = nil
	l.closeUDP()
	l.pipes.Close()
	if err := l.poll.Close(); err != nil && !errors.Is(err, netpoll.ErrClosed) {
		l.srv.log.Warn().Err(err).Int("loop", l.id).Msg("closing poller")
	}
}

// bumpGen moves slot idx to a new generation without freeing it, so events
// queued under the old one are ignored; the owner re-registers its fds.
func (l *loop) bumpGen(idx uint32) uint32 {
	s := &l.slots[idx]
	s.gen = (s.gen + 1) & (1<<31 - 1)
	return s.gen
}
