package l4

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/timer"
	"github.com/splicerlb/splicer/pkg/backend"
)

// Sides of a connection, carried in the epoll token.
const (
	sideClient  uint32 = 0
	sideBackend uint32 = 1
)

// connEvents is the interest set of both fds of a connection, registered
// once: edge-triggered, so readiness is tracked in half.srcReady/dstReady
// and epoll_ctl is never called again while the connection lives.
// EPOLLPRI reports TCP urgent data (see half.urgent).
const connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLPRI | unix.EPOLLET

// connState is where a connection is in its life:
//
//	closed -> [header] -> connecting -> relaying -> closing -> closed
//	             |          |  ^  \        \________________/^
//	             |          v  |   \_______________________/ |
//	             |        queued / starved ------------------'
//	             '-------------------------------------------'
//
// A client starts connecting; with every backend at its cap it is queued,
// and when its backend socket cannot be made for want of fds it is
// starved, until a slot or an fd comes. Relaying ends in closed at once,
// or through closing when a socket failed and the bytes delivered to the
// other peer must reach it before that peer gets the reset. On an
// accept_proxy frontend a trusted sender's connection first reads its
// PROXY header (header): a valid one leads on to connecting, with the
// access list and per-client limits applied to the client it names; an
// invalid one, or none within proxy_header_timeout, closes it.
type connState uint8

const (
	// stateClosed is the zero value: a recycled conn struct reads as
	// closed, so code still holding it after close does nothing more.
	stateClosed     connState = iota // fds closed; the struct awaits reuse
	stateHeader                      // reading the client's PROXY header (accept_proxy)
	stateConnecting                  // waiting for the backend's connect
	stateQueued                      // waiting in the frontend's queue for a backend slot
	stateStarved                     // waiting for a local resource (an fd) to connect
	stateRelaying                    // bytes flow both ways (or one way, after a failure)
	stateClosing                     // waiting for the survivor's send queue to empty
)

var stateNames = [...]string{
	stateClosed:     "closed",
	stateHeader:     "proxy_header",
	stateConnecting: "connecting",
	stateQueued:     "queued",
	stateStarved:    "starved",
	stateRelaying:   "relaying",
	stateClosing:    "closing",
}

// String is the state's name in the connection list.
func (s connState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// maxTries bounds the backends one client tries (1 + retries, retries <= 10).
const maxTries = 11

// conn is one proxied client connection and, once connected, its backend
// connection. It belongs to one loop; only that loop touches it.
type conn struct {
	loop  *loop
	fe    *frontend
	id    uint64    // server-wide, for the admin API; 0 while unused
	start time.Time // when the client was accepted
	idx   uint32    // slot in loop.slots
	gen   uint32    // slot generation the fds are registered with
	state connState
	// The flags sit here, in the padding behind state (the struct's size
	// class sets an idle connection's memory: see stamp).
	noSplice  bool // splice(2) refused these fds: copy through buffers
	keepalive bool // the backend socket has its keepalive settings
	queued    bool // in loop.again
	// handing is set while an upgrade hands the connection over: it reads
	// neither side, so that its carriers empty and it can go (handoff.go).
	handing bool
	// client is the client's address: the peer's, or the one its PROXY
	// header carried, once read (then proxied holds the rest).
	client  netip.AddrPort
	proxied *proxied
	key     uint64    // balancing key derived from the client address
	ln      *listener // the listener that accepted it
	// hdrNeed is how many bytes the PROXY header needs at least, while
	// it is read (stateHeader).
	hdrNeed uint32
	// admitted is set once the client is counted in the frontend's
	// per-client table, which end releases.
	admitted bool

	cfd, bfd int
	be       *backend.Backend // nil until a backend slot is acquired

	tried        [maxTries]*backend.Backend
	results      [maxTries]TryResult
	ntried       uint8
	connectStart stamp
	queuedAt     stamp
	// For the connection log: the listener's address, the time spent in
	// the queue, when the first try began and when the backend connect
	// succeeded (zero: never).
	listen      netip.AddrPort
	queueWait   time.Duration
	firstTry    stamp
	connectedAt stamp

	up   half // client -> backend
	down half // backend -> client

	// cause is why the connection ended, set by end; CauseNone while it
	// lives.
	cause Cause
	// failed has a bit per side (1<<side) whose socket failed;
	// firstFailed is the side that failed first.
	failed      uint8
	firstFailed uint8
	// finFirst is the side whose FIN was read first, +1 (0: none yet).
	finFirst uint8
	// served is set once the backend proved it serves (its first byte
	// was read) and passive health was told so.
	served bool
	// outq is the survivor's unacknowledged byte count at the last look,
	// while closing.
	outq int

	timer      timer.Timer // connect, queue, idle, half-closed, closing timeouts
	lastActive stamp
}

// proxied is what a PROXY header said beyond the client's address. Kept
// apart from conn, which only the connections of an accept_proxy frontend
// pay for.
type proxied struct {
	via netip.AddrPort // the peer that sent the header
	dst netip.AddrPort // the address the header says the client connected to
}

// A stamp is an instant of a connection's life: the time since its start
// plus one nanosecond, so that the zero stamp means "not yet". A
// connection holds one time.Time (start, 24 bytes) and its other instants
// as stamps (8 bytes each), which keeps the struct in a smaller size class
// and an idle connection under 1 KiB.
type stamp int64

// stampOf is t as a stamp of c; the zero time is the zero stamp.
func (c *conn) stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(max(t.Sub(c.start), 0)) + 1
}

// stampNow is the loop's time as a stamp of c.
func (c *conn) stampNow() stamp { return c.stampOf(c.loop.now) }

// time is s as a time; the zero stamp is the zero time.
func (c *conn) time(s stamp) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return c.start.Add(time.Duration(s - 1))
}

// since is the time from s to the loop's time.
func (c *conn) since(s stamp) time.Duration { return c.loop.now.Sub(c.start) - time.Duration(s-1) }

// sub is the time from t to s; both are set.
func (s stamp) sub(t stamp) time.Duration { return time.Duration(s - t) }

// startConn takes a freshly accepted client socket of ln and starts
// connecting it to a backend, or, when header is set, reading its PROXY
// header first. Without a header the listener has admitted the client
// (access list, per-client limits).
func (l *loop) startConn(ln *listener, fd int, peer netip.AddrPort, header bool) {
	fe := ln.fe
	c := l.newConn()
	c.fe, c.ln, c.cfd, c.bfd, c.client, c.listen = fe, ln, fd, -1, peer, ln.addr
	c.state = stateConnecting
	c.id = l.srv.nextID.Add(1)
	c.start = l.now
	fe.total.Add(1) // active was counted by the listener's reservation
	// Not at the reservation, which the listener also takes for an
	// accept that may find no client.
	fe.notePeak(fe.active.Load())
	c.key = keyFor(peer.Addr())
	c.admitted = fe.clients != nil && !header
	c.lastActive = c.stampNow()
	c.idx, c.gen = l.alloc(c)

	if err := l.poll.Add(fd, connEvents, token(c.idx, c.gen, sideClient)); err != nil {
		l.srv.log.Warn().Err(err).Msg("registering client socket")
		c.end(CauseLocalError)
		return
	}
	if header {
		c.startHeader()
		return
	}
	c.connectNext()
}

func (l *loop) newConn() *conn {
	if c := l.connPool.get(); c != nil {
		return c
	}
	c := &conn{loop: l}
	c.timer.Fire = c.onTimer
	return c
}

// recycle clears c and keeps it for the next connection.
func (l *loop) recycle(c *conn) {
	fire := c.timer.Fire
	*c = conn{loop: l}
	c.timer.Fire = fire
	l.connPool.put(c)
}

// connectNext starts a non-blocking connect to the next backend, queues
// the client when every backend that could take it is at its cap, or ends
// it when every allowed try failed or no backend is available. Bytes the
// client already sent wait in its socket, so a retry loses none.
func (c *conn) connectNext() {
	if c.ntried == 0 && c.fe.cfg.MaxQueue > 0 && c.fe.queue.len() > 0 {
		// Clients are already waiting for a slot: queue behind them
		// rather than take the next free slot out of turn.
		c.enqueue()
		return
	}
	if int(c.ntried) <= c.fe.cfg.Retries && c.ntried < maxTries {
		b := c.fe.pick(c.key, c.tried[:c.ntried])
		if b == nil && c.ntried == 0 {
			// The snapshot may lag a backend that just left its cap.
			b = c.fe.acquireAny()
		}
		if b != nil {
			c.connectTo(b)
			return
		}
	}
	switch {
	case c.ntried > 0:
		c.end(CauseConnectFailed)
	case c.fe.atCap():
		c.enqueue()
	default:
		c.end(CauseNoBackend)
	}
}

// connectTo starts a non-blocking connect to b, on which the caller holds
// a slot; a failure moves on to the next backend.
func (c *conn) connectTo(b *backend.Backend) {
	c.state = stateConnecting
	c.be = b
	c.connectStart = c.stampNow()
	fd, _, err := sock.Connect(b.Address())
	if err != nil {
		if isLocalFailure(err) {
			c.giveBack()
			c.starve(err)
			return
		}
		c.countTry(b)
		c.retry(err)
		return
	}
	c.countTry(b)
	c.bfd = fd
	c.up.src, c.up.dst, c.down.src, c.down.dst = c.cfd, fd, fd, c.cfd
	if err := c.loop.addBackendSocket(fd, token(c.idx, c.gen, sideBackend)); err != nil {
		// ENOMEM or ENOSPC (max_user_watches): ours, not the backend's.
		c.ntried--
		c.giveBack()
		if c.dropBackendSocket() {
			c.starve(err)
		}
		return
	}
	c.loop.wheel.Schedule(&c.timer, c.fe.cfg.ConnectTimeout)
}

// countTry records a try of b, begun at connectStart.
func (c *conn) countTry(b *backend.Backend) {
	if c.ntried == 0 {
		c.firstTry = c.connectStart
	}
	c.tried[c.ntried] = b
	c.ntried++
}

// retry records a failed connect to the current backend and moves on to
// the next one; nothing was sent to this one, so the client loses nothing.
func (c *conn) retry(err error) {
	reason := backend.ClassifyFailure(err)
	c.results[c.ntried-1] = tryResult(reason)
	c.be.AddFailure(reason)
	if o := c.fe.observer; o != nil {
		o.ConnectFailed(c.be, reason)
	}
	c.giveBack()
	if c.dropBackendSocket() {
		c.connectNext()
	}
}

// giveBack releases the backend slot c holds, waking a waiter for it.
func (c *conn) giveBack() {
	b := c.be
	c.be = nil
	b.Release()
	c.fe.slotFreed(b)
}

// dropBackendSocket closes a backend socket that never relayed. The slot
// generation moves on, so events still queued for the old socket are
// ignored, and the client fd is re-registered under the new generation.
// It reports false when that failed and the connection was ended.
func (c *conn) dropBackendSocket() bool {
	if c.bfd < 0 {
		return true
	}
	unix.Close(c.bfd)
	c.bfd = -1
	c.gen = c.loop.bumpGen(c.idx)
	if err := c.loop.poll.Modify(c.cfd, connEvents, token(c.idx, c.gen, sideClient)); err != nil {
		c.end(CauseLocalError)
		return false
	}
	return true
}

// starvedRetry is how often a starved client tries to connect again.
const starvedRetry = acceptPause

// starve parks a client whose backend socket could not be made for want of
// a local resource (fds, memory): it keeps its place, the loop's listeners
// pause as they do when accept itself runs out of fds, and it tries again
// every starvedRetry until the wait limit (queue_timeout, or
// connect_timeout without a queue) counted from its accept.
func (c *conn) starve(err error) {
	c.state = stateStarved
	for _, ln := range c.loop.listeners {
		if !ln.paused {
			ln.pause(err)
		}
	}
	c.loop.wheel.Schedule(&c.timer, starvedRetry)
}

// starvedWait is how long a starved client may wait in all.
func (c *conn) starvedWait() time.Duration {
	if c.fe.cfg.MaxQueue > 0 {
		return c.fe.cfg.QueueTimeout
	}
	return c.fe.cfg.ConnectTimeout
}

func (c *conn) onEvent(ev uint32, side uint32) {
	switch c.state {
	case stateHeader:
		c.onHeaderEvent(ev) // only the client is registered
		return
	case stateConnecting:
		if side == sideBackend {
			c.onConnectEvent(ev)
			return
		}
		fallthrough
	case stateQueued, stateStarved:
		// Only the client is registered. Its bytes and FIN wait in the
		// socket until relaying starts, and the edges that announced them
		// are kept for then. A client that failed meanwhile is ended now,
		// unless it left bytes: those are delivered first, as they would
		// be had it reset a moment later.
		if ev&unix.EPOLLERR != 0 && c.failed == 0 {
			if sock.Unread(c.cfd) == 0 {
				c.end(CauseClientReset)
				return
			}
			c.sideFailed(sideClient)
		}
		markReady(ev, &c.up, &c.down)
		return
	case stateClosing:
		if ev&unix.EPOLLERR != 0 && c.failed&(1<<side) == 0 {
			// The survivor failed too: nothing more can reach it. (The
			// failed side keeps reporting its error: it is ignored.)
			c.end(CauseNone)
		}
		return
	}
	if ev&unix.EPOLLERR != 0 {
		c.sideFailed(side)
	}
	if side == sideClient {
		markReady(ev, &c.up, &c.down)
	} else {
		markReady(ev, &c.down, &c.up)
	}
	c.relay()
}

// markReady records what an event says of one socket: in is the direction
// that reads from it, out the one that writes to it. EPOLLHUP and
// EPOLLRDHUP count as readable, so the read that follows sees the EOF; an
// error too, so the read returns what arrived before it.
func markReady(ev uint32, in, out *half) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLPRI) != 0 {
		in.srcReady = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		in.srcHup = true
	}
	if ev&unix.EPOLLPRI != 0 {
		in.urgent = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		out.dstReady = true
	}
}

// onConnectEvent completes or fails the non-blocking connect. A failed
// connect always reports EPOLLERR and EPOLLHUP (the socket is closed with
// an error), so EPOLLOUT alone means connected and needs no SO_ERROR read;
// otherwise SO_ERROR says what went wrong.
func (c *conn) onConnectEvent(ev uint32) {
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return
	}
	if err := connectResult(c.bfd, ev); err != nil {
		c.loop.wheel.Stop(&c.timer)
		c.retry(err)
		return
	}
	c.results[c.ntried-1] = TryConnected
	c.connectedAt = c.stampNow()
	c.be.ObserveConnect(c.connectedAt.sub(c.connectStart))
	// Nagle would delay small replies; urgent data is carried inline (see
	// half.urgent). Failures only cost latency or an urgent byte's mark.
	_ = sock.SetNoDelay(c.bfd)
	_ = sock.SetOOBInline(c.bfd)
	c.state = stateRelaying
	c.up.dstReady = true
	if v := c.fe.send.versionFor(c.be); v != 0 {
		c.loadHeader(v)
	}
	// A server that speaks first (PostgreSQL, MySQL) may have sent its
	// greeting already; the edge for it came with this event.
	markReady(ev&^unix.EPOLLOUT, &c.down, &c.up)
	c.lastActive = c.stampNow()
	c.armIdle()
	c.relay()
}

// isLocalFailure reports whether a connect failed for lack of a local
// resource rather than because of the backend.
func isLocalFailure(err error) bool {
	for _, e := range []error{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.EADDRNOTAVAIL, unix.ENOSPC} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// connectResult is nil when the event says the connect succeeded.
func connectResult(fd int, ev uint32) error {
	if ev&(unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return nil
	}
	if err := sock.ConnectError(fd); err != nil {
		return err
	}
	// Connected, then hung up before we looked: nothing to relay to.
	return unix.ECONNRESET
}

// timeout returns the inactivity limit now in force, and the cause it
// ends the connection with: the idle timeout, or the shorter half-closed
// timeout once one direction has ended.
func (c *conn) timeout() (time.Duration, Cause) {
	t := c.fe.cfg.IdleTimeout
	if (c.up.finished() || c.down.finished()) && c.fe.cfg.HalfCloseTimeout < t {
		return c.fe.cfg.HalfCloseTimeout, CauseHalfCloseTimeout
	}
	return t, CauseIdleTimeout
}

// keepalivePending reports whether the backend socket still waits for its
// keepalive settings. Client sockets inherit them from the listener; backend
// sockets get them only once the connection has sat idle for keepalive_idle,
// because until then the kernel would send no probe anyway, and most
// connections end before: four setsockopt calls saved per connection.
func (c *conn) keepalivePending() bool {
	return c.fe.cfg.TCPKeepalive && !c.keepalive
}

// armIdle (re)arms the timer for whatever comes first counted from the last
// activity: the inactivity limit in force, or the moment the backend socket
// needs its keepalive settings.
func (c *conn) armIdle() {
	idle := c.since(c.lastActive)
	t, _ := c.timeout()
	d := t - idle
	if c.keepalivePending() {
		d = min(d, c.fe.cfg.KeepaliveIdle-idle)
	}
	c.loop.wheel.Schedule(&c.timer, max(d, 0))
}

// onTimer runs from the timing wheel. While relaying, activity does not
// touch the timer; instead the timer re-arms itself for the time left since
// the last activity, so a busy connection costs no timer work per read.
func (c *conn) onTimer() {
	switch c.state {
	case stateHeader:
		c.headerRefused(CauseProxyTimeout, errHeaderTimedOut)
	case stateQueued:
		c.end(CauseQueueTimeout)
	case stateStarved:
		if c.loop.now.Sub(c.start) >= c.starvedWait() {
			c.end(CauseLocalError)
			return
		}
		c.connectNext()
	case stateConnecting:
		if _, err := sock.PeerAddr(c.bfd); err == nil {
			// The loop came late (stalled past connect_timeout): the
			// handshake completed and its event waits in this batch or
			// the next. Not a timeout, and not the backend's fault.
			c.onConnectEvent(unix.EPOLLOUT)
			return
		}
		c.retry(errConnectTimeout)
	case stateRelaying:
		idle := c.since(c.lastActive)
		t, cause := c.timeout()
		if idle >= t {
			c.end(cause)
			return
		}
		if c.keepalivePending() && idle >= c.fe.cfg.KeepaliveIdle {
			c.fe.setKeepalive(c.bfd)
			c.keepalive = true
		}
		c.armIdle()
	case stateClosing:
		c.lingerCheck()
	}
}

// end is the one way a connection ends: it records cause (or, once a
// socket has failed, the cause that failure decides) and closes both
// sockets. A side
// gets a plain close, and so a FIN after the bytes it still has to
// receive, only when the cause is a clean end and its incoming stream was
// complete; every other side gets a reset (SO_LINGER 0), so a cut stream
// never looks complete. end is idempotent.
func (c *conn) end(cause Cause) {
	if c.state == stateClosed {
		return
	}
	if c.failed != 0 {
		// A socket failure came first, whatever cut the drain short.
		cause = c.failureCause()
	}
	c.cause = cause
	if c.state == stateQueued {
		c.fe.queue.remove(c)
		c.queueWait = c.since(c.queuedAt)
	}
	c.state = stateClosed
	l := c.loop
	l.wheel.Stop(&c.timer)
	c.flush()
	if c.bfd >= 0 {
		if !cause.Clean() || !c.up.shut {
			_ = sock.SetLingerZero(c.bfd)
		}
		unix.Close(c.bfd)
	}
	if !cause.Clean() || !c.down.shut {
		_ = sock.SetLingerZero(c.cfd)
	}
	unix.Close(c.cfd)
	c.dropCarrier(&c.up)
	c.dropCarrier(&c.down)
	c.fe.closed[cause].Add(1)
	c.logEnd(cause)
	if b := c.be; b != nil {
		b.AddClosed(int(cause))
		c.reportEnd(b, cause)
		c.be = nil
		b.Release()
		c.fe.slotFreed(b)
	}
	if t := c.fe.clients; t != nil && c.admitted {
		t.release(c.client.Addr())
	}
	l.releaseSlot(c.idx)
	l.srv.connDone(c.fe)
	if !c.queued {
		l.recycle(c)
	}
}

// reportEnd tells passive health what the end of a relayed connection
// proves about its backend. Only a backend that failed before sending a
// single byte is reported sick: a reset after a reply is how servers
// answer a client that broke their protocol, and a client must not be able
// to take a pool down. A clean end proves it serves, for a backend that
// never sent a byte.
func (c *conn) reportEnd(b *backend.Backend, cause Cause) {
	if cause == CauseBackendReset {
		b.AddReset()
	}
	o := c.fe.observer
	if o == nil || c.served || c.results[c.ntried-1] != TryConnected {
		return
	}
	switch {
	case cause == CauseBackendReset:
		o.Reset(b)
	case cause.Clean():
		o.Served(b)
	}
}

// errConnectTimeout stands for a connect that did not finish in time.
var errConnectTimeout = unix.ETIMEDOUT
