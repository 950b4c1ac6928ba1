package l4

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/timer"
	"github.com/splicerlb/splicer/pkg/backend"
)

// flow is one client's conversation through a UDP frontend: the backend
// picked by its first datagram and a socket of its own towards it, whose
// ephemeral port tells the backend's replies apart from other flows'. It
// belongs to its listener's loop.
type flow struct {
	ln     *udpListener
	key    flowKey
	fd     int // -1 once closed
	idx    uint32
	be     *backend.Backend
	peer   *udpPeer     // the backend's address, both ways
	client sock.RawAddr // the client, for replies

	id                uint64    // server-wide, shared with connections, for the admin API
	start             time.Time // when the first datagram came
	firstReply        time.Time // when the first reply came; zero before
	requests, replies uint64
	bytesIn, bytesOut uint64 // relayed client to backend, and replies read for the client
	// icmpSinceReply is set by an ICMP error that came after replies and
	// cleared by the next reply; see readErrors.
	icmpSinceReply bool
	lastActive     time.Time
	timer          timer.Timer
}

// newFlow takes a flow struct from the loop's free list.
func (l *loop) newFlow() *flow {
	if f := l.flowPool.get(); f != nil {
		return f
	}
	f := &flow{fd: -1}
	f.timer.Fire = f.expire
	return f
}

// recycleFlow returns a closed flow to the free list, cleared except for
// its timer callback, which is bound to the struct.
func (l *loop) recycleFlow(f *flow) {
	fire := f.timer.Fire
	*f = flow{fd: -1}
	f.timer.Fire = fire
	l.flowPool.put(f)
}

// onEvent handles the backend socket: replies first, then ICMP errors, so
// that replies which arrived before an error are delivered and count.
func (f *flow) onEvent(ev uint32, _ uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLERR) != 0 {
		f.readReplies()
	}
	if f.fd >= 0 && ev&unix.EPOLLERR != 0 {
		f.readErrors()
	}
}

// readErrors takes the errors off the socket's error queue. An ICMP error
// about a datagram to the flow's backend means the backend did not get it
// (ECONNREFUSED: no one listens). A flow that never had a reply ends, and
// the backend is charged one failed connect, as a refused TCP connect
// would be; the client's next datagram opens a new flow, picked afresh.
// A flow that has had replies is alive by proof: an ICMP error there may
// be forged by anyone who can guess its port, or be one lost datagram, so
// it ends only when a second error comes with no reply in between, and
// then without a charge against the backend.
func (f *flow) readErrors() {
	errored := false
	queue := drainErrors(f.fd, f.ln.fe, f.peer, func(errno unix.Errno) {
		if !errored {
			errored = true
			if f.replies == 0 {
				backendFailed(f.ln.fe, f.be, errno)
			}
		}
	})
	if !queue {
		// EPOLLERR with an empty queue: the kernel could not queue the
		// error. Clear it, or epoll reports it on every turn.
		sock.ClearError(f.fd)
	}
	if !errored {
		return
	}
	if f.replies == 0 || f.icmpSinceReply {
		f.close(CauseICMPError)
		return
	}
	f.icmpSinceReply = true
}

// drainErrors empties fd's error queue, counting each error about a
// datagram to peer: a refusal or unreachable as a lost datagram (refused),
// passed to fail; "fragmentation needed" as a send error. Errors the local
// stack raised, or about another address (a late error for an earlier
// user of the same ephemeral port), are ignored. It reports whether the
// queue held anything.
func drainErrors(fd int, fe *frontend, peer *udpPeer, fail func(unix.Errno)) bool {
	any := false
	for {
		e, err := sock.ReadError(fd)
		if err != nil {
			return any // EAGAIN: the queue is empty
		}
		any = true
		switch {
		case !e.ICMP || e.To != peer.addr:
		case e.Errno == unix.EMSGSIZE:
			fe.udp.drop(DropSendError)
		default:
			fe.udp.drop(DropRefused)
			fail(e.Errno)
		}
	}
}

// backendFailed counts an ICMP error from b and reports it to the observer.
func backendFailed(fe *frontend, b *backend.Backend, errno unix.Errno) {
	reason := backend.ClassifyFailure(errno)
	b.AddFailure(reason)
	if fe.observer != nil {
		fe.observer.ConnectFailed(b, reason)
	}
}

// readReplies reads the backend's replies straight into free slots of the
// loop's reply batch, every reply queued with one recvmmsg, and keeps
// them for the client; they are counted once sent. A datagram from any
// other address is dropped and counted. The flow ends after its expected
// number of replies: responses for each datagram the client sent.
func (f *flow) readReplies() {
	ln := f.ln
	fe := ln.fe
	l := ln.loop
	b := l.replyBatch(ln)
	first := b.Queued()
	// With responses set, no more than the replies still expected: the
	// flow ends with the last, and a request/response flow asks for one.
	// The socket is level-triggered, so a datagram left unread (a
	// foreign one took a slot) is reported again.
	want := 0
	if r := fe.cfg.Responses; r > 0 {
		want = int(min(uint64(r)*f.requests-f.replies, uint64(b.Slots())))
	}
	n, err := b.RecvTail(f.fd, want)
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		// The pending error of an ICMP message (ECONNREFUSED), which the
		// kernel reports before the replies queued ahead of it, and
		// clears by reporting it: readErrors counts it from the error
		// queue. Read the replies now.
		n, err = b.RecvTail(f.fd, want)
	}
	if err != nil {
		return
	}
	kept := 0
	for j := first; j < first+n; j++ {
		if b.From(j) != f.peer.addr {
			fe.udp.drop(DropForeign)
			f.be.AddForeign()
			continue
		}
		l.replyBE[b.Queued()] = f.be
		f.bytesOut += uint64(len(b.Data(j)))
		b.Keep(j, &f.client, f.key.local)
		kept++
	}
	if kept == 0 {
		return
	}
	f.icmpSinceReply = false
	if f.replies == 0 {
		f.firstReply = l.now
	}
	if f.replies == 0 && fe.observer != nil {
		// The first reply is what proves the backend serves: reported
		// now, not at close, so a flow that an ICMP error ends later
		// does not cancel its own failure.
		fe.observer.Served(f.be)
	}
	f.replies += uint64(kept)
	f.lastActive = l.now
	if r := fe.cfg.Responses; r > 0 && f.replies >= uint64(r)*f.requests {
		f.close(CauseReplied)
	}
}

// expire runs from the timing wheel at the idle deadline measured from
// the flow's start or last re-arm. Traffic since then only moved
// lastActive, so the timer is re-armed for the rest of the idle time
// instead of being touched per datagram.
//
// The wheel fires before the events of the same wake-up are dispatched: a
// loop that woke late (kept off the CPU past the deadline) may find here
// replies that came while it was away, within the idle time, still queued
// on the socket. They are read first and relayed, as they would have been
// on time, and count as activity; closing the socket would drop them
// uncounted.
func (f *flow) expire() {
	if f.fd < 0 {
		return
	}
	idle := f.ln.fe.cfg.IdleTimeout
	if left := idle - f.ln.loop.now.Sub(f.lastActive); left > 0 {
		f.ln.loop.wheel.Schedule(&f.timer, left)
		return
	}
	if f.readReplies(); f.fd < 0 {
		return // its last expected reply, or an ICMP error, ended it
	}
	if f.lastActive.Equal(f.ln.loop.now) {
		f.ln.loop.wheel.Schedule(&f.timer, idle)
		return
	}
	f.close(CauseIdleTimeout)
}

// close ends the flow for cause: its socket closes (a late reply gets an
// ICMP port unreachable from the kernel) and its reservations are returned.
func (f *flow) close(cause Cause) {
	if f.fd < 0 {
		return
	}
	f.ln.fe.closed[cause].Add(1)
	f.be.AddClosed(int(cause))
	f.logEnd(cause)
	// Closing the fd removes it from the epoll set.
	unix.Close(f.fd)
	f.release()
}

// release takes the flow out of its loop once its socket is closed or
// handed over: its timer, slot, table entry and reservations.
func (f *flow) release() {
	ln := f.ln
	l := ln.loop
	l.wheel.Stop(&f.timer)
	f.fd = -1
	l.releaseSlot(f.idx)
	delete(ln.flows, f.key)
	f.be.Release()
	ln.unadmit(f.key.clientAddr().Addr())
	l.srv.flowDone()
	l.recycleFlow(f)
}

// sinkReadBudget bounds the unsolicited replies a sink reads per wake-up.
const sinkReadBudget = 16

// sink is a loop's shared socket towards one backend of a frontend with
// responses = 0, where no flow is kept. Nothing is expected back: a reply
// is dropped and counted, an ICMP error counted against the backend.
type sink struct {
	fe   *frontend
	be   *backend.Backend
	peer *udpPeer
	fd   int
	idx  uint32
	buf  []byte
}

// sink returns the loop's sink towards b, opening it on first use.
func (l *loop) sink(fe *frontend, b *backend.Backend) (*sink, error) {
	if s := l.sinks[b]; s != nil {
		return s, nil
	}
	fd, err := sock.UDPSocket(b.Address())
	if err != nil {
		return nil, err
	}
	s := &sink{fe: fe, be: b, peer: fe.peers[b], fd: fd}
	var gen uint32
	s.idx, gen = l.alloc(s)
	if err := l.poll.Add(fd, unix.EPOLLIN, token(s.idx, gen, 0)); err != nil {
		l.releaseSlot(s.idx)
		unix.Close(fd)
		return nil, err
	}
	if l.sinks == nil {
		l.sinks = make(map[*backend.Backend]*sink)
	}
	l.sinks[b] = s
	return s, nil
}

func (s *sink) onEvent(ev uint32, _ uint32) {
	if ev&unix.EPOLLERR != 0 {
		// No flow to end here: every refusal is one datagram's, and
		// counts against the backend.
		fail := func(errno unix.Errno) { backendFailed(s.fe, s.be, errno) }
		if !drainErrors(s.fd, s.fe, s.peer, fail) {
			sock.ClearError(s.fd)
		}
	}
	if ev&unix.EPOLLIN == 0 {
		return
	}
	if s.buf == nil {
		s.buf = make([]byte, sock.MaxDatagram)
	}
	// Level-triggered: what is left after the budget is reported again.
	for i := 0; i < sinkReadBudget; i++ {
		if _, _, err := sock.RecvFrom(s.fd, s.buf); err != nil {
			return
		}
		s.fe.udp.drop(DropUnsolicited)
	}
}

func (s *sink) close(l *loop) {
	unix.Close(s.fd)
	l.releaseSlot(s.idx)
}
