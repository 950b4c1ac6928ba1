package l4

import (
	"errors"
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
const connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// connState is where a connection is in its life.
type connState uint8

const (
	// stateClosed is the zero value: a recycled conn struct reads as
	// closed, so code still holding it after close does nothing more.
	stateClosed     connState = iota // fds closed; the struct awaits reuse
	stateConnecting                  // waiting for the backend's connect
	stateQueued                      // waiting for a backend slot
	stateRelaying                    // bytes flow both ways
)

// closeMode says how close treats each side.
type closeMode uint8

const (
	closeGraceful     closeMode = iota // both directions ended: plain close
	closeAbort                         // server stop or timeout: plain close
	closeResetClient                   // the backend failed: RST the client
	closeResetBackend                  // the client failed: RST the backend
)

// maxTries bounds the backends one client tries (1 + retries, retries <= 10).
const maxTries = 11

// conn is one proxied client connection and, once connected, its backend
// connection. It belongs to one loop; only that loop touches it.
type conn struct {
	loop   *loop
	fe     *frontend
	id     uint64    // server-wide, for the admin API; 0 while unused
	start  time.Time // when the client was accepted
	idx    uint32    // slot in loop.slots
	gen    uint32    // slot generation the fds are registered with
	state  connState
	client netip.AddrPort
	key    uint64 // balancing key derived from the client address

	cfd, bfd int
	be       *backend.Backend // nil until a backend slot is acquired

	tried        [maxTries]*backend.Backend
	ntried       int
	connectStart time.Time
	queuedAt     time.Time

	up   half // client -> backend
	down half // backend -> client

	timer      timer.Timer // connect timeout, then idle / half-closed timeout
	lastActive time.Time
	noSplice   bool // splice(2) refused these fds: copy through buffers
	keepalive  bool // the backend socket has its keepalive settings
	queued     bool // in loop.again
}

// startConn takes a freshly accepted client socket and starts connecting it
// to a backend.
func (l *loop) startConn(fe *frontend, fd int, peer netip.AddrPort) {
	c := l.newConn()
	c.fe, c.cfd, c.bfd, c.client = fe, fd, -1, peer
	c.state = stateConnecting
	c.id = l.srv.nextID.Add(1)
	c.start = l.now
	fe.total.Add(1) // active was counted by the listener's reservation
	c.key = keyFor(peer.Addr())
	c.lastActive = l.now
	c.idx, c.gen = l.alloc(c)
	l.conns[c] = struct{}{}

	if err := l.poll.Add(fd, connEvents, token(c.idx, c.gen, sideClient)); err != nil {
		l.srv.log.Warn().Err(err).Msg("registering client socket")
		c.close(closeAbort)
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

// connectNext starts a non-blocking connect to the next backend, or closes
// the client when every allowed try failed or no backend is available.
// Bytes the client already sent wait in its socket, so a retry loses none.
func (c *conn) connectNext() {
	if c.ntried == 0 && c.fe.cfg.MaxQueue > 0 && c.fe.queue.len() > 0 {
		// Clients are already waiting for a slot: queue behind them
		// rather than take the next free slot out of turn.
		c.enqueue()
		return
	}
	if c.ntried <= c.fe.cfg.Retries && c.ntried < maxTries {
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
	if c.ntried == 0 && c.fe.atCap() {
		c.enqueue()
		return
	}
	c.fe.noBackend.Add(1)
	c.close(closeAbort)
}

// connectTo starts a non-blocking connect to b, on which the caller holds
// a slot; a failure moves on to the next backend.
func (c *conn) connectTo(b *backend.Backend) {
	c.tried[c.ntried] = b
	c.ntried++
	c.be = b
	c.connectStart = c.loop.now
	fd, _, err := sock.Connect(b.Address())
	if err != nil {
		if isLocalFailure(err) {
			// Out of fds, buffers or ephemeral ports: our shortage, not
			// the backend's, so it is not counted against it, and trying
			// another backend would only fail the same way.
			b.Release()
			c.be = nil
			c.fe.slotFreed(b)
			c.fe.noBackend.Add(1)
			c.close(closeAbort)
			return
		}
		c.connectFailed(err)
		if c.state != stateClosed {
			c.connectNext()
		}
		return
	}
	c.bfd = fd
	c.up.src, c.up.dst, c.down.src, c.down.dst = c.cfd, fd, fd, c.cfd
	if err := c.loop.poll.Add(fd, connEvents, token(c.idx, c.gen, sideBackend)); err != nil {
		c.connectFailed(err)
		if c.state != stateClosed {
			c.connectNext()
		}
		return
	}
	c.loop.wheel.Schedule(&c.timer, c.fe.cfg.ConnectTimeout)
}

// connectFailed records a failed attempt on the current backend and frees
// its backend socket. The slot generation moves on, so events still queued
// for the old socket are ignored, and the client fd is re-registered under
// the new generation.
func (c *conn) connectFailed(err error) {
	reason := backend.ClassifyFailure(err)
	c.be.AddFailure(reason)
	if o := c.fe.observer; o != nil {
		o.ConnectFailed(c.be, reason)
	}
	b := c.be
	b.Release()
	c.be = nil
	c.fe.slotFreed(b)
	if c.bfd >= 0 {
		unix.Close(c.bfd)
		c.bfd = -1
		c.gen = c.loop.bumpGen(c.idx)
		if err := c.loop.poll.Modify(c.cfd, connEvents, token(c.idx, c.gen, sideClient)); err != nil {
			c.close(closeAbort)
		}
	}
}

func (c *conn) onEvent(ev uint32, side uint32) {
	if side == sideBackend && c.state == stateConnecting {
		c.onConnectEvent(ev)
		return
	}
	if ev&unix.EPOLLERR != 0 {
		c.failSide(side)
		return
	}
	if side == sideClient {
		markReady(ev, &c.up, &c.down)
	} else {
		markReady(ev, &c.down, &c.up)
	}
	if c.state == stateRelaying {
		c.relay()
	}
}

// markReady records what an event says of one socket: in is the direction
// that reads from it, out the one that writes to it. EPOLLHUP and
// EPOLLRDHUP count as readable, so the read that follows sees the EOF.
func markReady(ev uint32, in, out *half) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		in.srcReady = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		in.srcHup = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP) != 0 {
		out.dstReady = true
	}
}

// failSide handles EPOLLERR on one side: the socket has a pending error
// (a reset, a keepalive timeout). The other side gets a reset too.
func (c *conn) failSide(side uint32) {
	if c.state == stateConnecting {
		// Only the client can fail here; the backend attempt is moot.
		c.close(closeAbort)
		return
	}
	if side == sideClient {
		c.close(closeResetBackend)
	} else {
		if !c.down.eof {
			c.backendReset()
		}
		c.close(closeResetClient)
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
		c.connectFailed(err)
		if c.state != stateClosed {
			c.connectNext()
		}
		return
	}
	c.be.ObserveConnect(c.loop.now.Sub(c.connectStart))
	// Nagle would delay small replies; a failure only costs latency.
	_ = sock.SetNoDelay(c.bfd)
	c.state = stateRelaying
	c.up.dstReady = true
	// A server that speaks first (PostgreSQL, MySQL) may have sent its
	// greeting already; the edge for it came with this event.
	markReady(ev&^unix.EPOLLOUT, &c.down, &c.up)
	c.lastActive = c.loop.now
	c.armIdle()
	c.relay()
}

// backendReset counts an established connection the backend broke.
func (c *conn) backendReset() {
	c.be.AddReset()
	if o := c.fe.observer; o != nil {
		o.Reset(c.be)
	}
}

// isLocalFailure reports whether a connect failed for lack of a local
// resource rather than because of the backend.
func isLocalFailure(err error) bool {
	for _, e := range []error{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.EADDRNOTAVAIL} {
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

// relay pumps both directions and decides what happens next.
func (c *conn) relay() {
	upRes, upErr := c.pump(&c.up)
	downRes, downErr := c.pump(&c.down)
	c.flush()
	switch {
	case upRes == pumpSrcFailed || downRes == pumpDstFailed:
		// The client reset or failed.
		c.loop.srv.log.Debug().Err(firstErr(upErr, downErr)).Str("client", c.client.String()).Msg("client failed")
		c.close(closeResetBackend)
		return
	case downRes == pumpSrcFailed || upRes == pumpDstFailed:
		if !c.down.eof {
			// After the backend's own FIN, a reset answers a client
			// writing to a closed session: not a backend failure.
			c.backendReset()
		}
		c.close(closeResetClient)
		return
	case c.up.finished() && c.down.finished():
		c.close(closeGraceful)
		return
	}
	if c.up.finished() || c.down.finished() {
		c.armIdle()
	}
	if (upRes == pumpMore || downRes == pumpMore) && !c.queued {
		c.queued = true
		c.loop.again = append(c.loop.again, c)
	}
}

// resume continues a relay that ran out of budget in an earlier pass.
func (c *conn) resume() {
	c.queued = false
	switch c.state {
	case stateRelaying:
		c.relay()
	case stateClosed:
		c.loop.recycle(c)
	}
}

// flush adds the bytes delivered since the last flush to the backend's
// counters: one atomic add per direction per wake-up, not per syscall.
func (c *conn) flush() {
	if c.be == nil || (c.up.unflushed == 0 && c.down.unflushed == 0) {
		return
	}
	c.be.AddBytes(c.up.unflushed, c.down.unflushed)
	c.fe.bytesIn.Add(c.up.unflushed)
	c.fe.bytesOut.Add(c.down.unflushed)
	c.up.unflushed, c.down.unflushed = 0, 0
}

// timeout returns the inactivity limit now in force: the idle timeout, or
// the shorter half-closed timeout once one direction has ended.
func (c *conn) timeout() time.Duration {
	t := c.fe.cfg.IdleTimeout
	if (c.up.finished() || c.down.finished()) && c.fe.cfg.HalfCloseTimeout < t {
		t = c.fe.cfg.HalfCloseTimeout
	}
	return t
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
	idle := c.loop.now.Sub(c.lastActive)
	d := c.timeout() - idle
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
	case stateQueued:
		c.queueTimedOut()
	case stateConnecting:
		c.connectFailed(errConnectTimeout)
		if c.state != stateClosed {
			c.connectNext()
		}
	case stateRelaying:
		idle := c.loop.now.Sub(c.lastActive)
		if idle >= c.timeout() {
			c.close(closeAbort)
			return
		}
		if c.keepalivePending() && idle >= c.fe.cfg.KeepaliveIdle {
			c.fe.setKeepalive(c.bfd)
			c.keepalive = true
		}
		c.armIdle()
	}
}

// close tears the connection down. It is idempotent.
func (c *conn) close(mode closeMode) {
	if c.state == stateClosed {
		return
	}
	if c.state == stateQueued {
		c.fe.queue.remove(c)
	}
	c.state = stateClosed
	l := c.loop
	l.wheel.Stop(&c.timer)
	c.flush()
	if c.bfd >= 0 {
		if mode == closeResetBackend {
			_ = sock.SetLingerZero(c.bfd)
		}
		unix.Close(c.bfd)
	}
	if mode == closeResetClient {
		_ = sock.SetLingerZero(c.cfd)
	}
	unix.Close(c.cfd)
	c.dropCarrier(&c.up)
	c.dropCarrier(&c.down)
	if c.be != nil {
		if o := c.fe.observer; o != nil && mode == closeGraceful {
			o.Served(c.be)
		}
		c.be.Release()
		c.fe.slotFreed(c.be)
	}
	if t := c.fe.clients; t != nil {
		t.release(c.client.Addr())
	}
	l.releaseSlot(c.idx)
	delete(l.conns, c)
	l.srv.connDone(c.fe)
	if !c.queued {
		l.recycle(c)
	}
}

// errConnectTimeout stands for a connect that did not finish in time.
var errConnectTimeout = unix.ETIMEDOUT

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
