package l4

import (
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/timer"
)

const (
	// listenBacklog is the accept queue length asked of the kernel (capped
	// by net.core.somaxconn).
	listenBacklog = 4096
	// acceptBudget bounds accepts per wake-up so a connection storm on one
	// listener cannot starve established connections on the same loop.
	acceptBudget = 64
	// acceptPause is how long a listener rests after EMFILE/ENFILE: long
	// enough for connections to end and free fds, short enough that
	// clients waiting in the backlog barely notice.
	acceptPause = 100 * time.Millisecond
	// acceptLogEvery rate-limits the "out of file descriptors" log line.
	acceptLogEvery = 10 * time.Second
)

// listener is one loop's listening socket for one frontend address.
type listener struct {
	loop *loop
	fe   *frontend
	fd   int
	addr netip.AddrPort
	idx  uint32

	paused     bool // resting after EMFILE/ENFILE
	full       bool // stopped at a connection cap
	pauseTimer timer.Timer
	lastLog    time.Time
	suppressed int // pauses not logged since lastLog

	deniedLog   time.Time // last access-list summary line
	deniedSince uint64    // clients denied since that line
	headerLog   headerLog // refused PROXY headers and senders
}

// newListener makes a listener of fd, a listening socket bound to bound,
// and registers it with l's poller; on error fd is closed. It runs on l's
// goroutine, or before l runs.
func newListener(l *loop, fe *frontend, fd int, bound netip.AddrPort) (*listener, error) {
	// Accepted sockets inherit TCP_NODELAY and the keepalive settings
	// from the listener: set once here instead of per connection.
	fe.tuneListener(fd)
	ln := &listener{loop: l, fe: fe, fd: fd, addr: bound}
	ln.pauseTimer.Fire = ln.unpause
	var gen uint32
	ln.idx, gen = l.alloc(ln)
	if err := l.poll.Add(fd, unix.EPOLLIN|unix.EPOLLET, token(ln.idx, gen, 0)); err != nil {
		l.releaseSlot(ln.idx)
		unix.Close(fd)
		return nil, err
	}
	return ln, nil
}

func (ln *listener) onEvent(ev uint32, _ uint32) {
	if !ln.paused && !ln.full {
		ln.acceptSome()
	}
}

func (ln *listener) resume() {
	if ln.fd >= 0 && !ln.paused && !ln.full {
		ln.acceptSome()
	}
}

// acceptSome accepts until the backlog is empty (EAGAIN, as edge-triggered
// epoll requires) or the budget is spent, in which case it queues itself to
// continue after the other handlers of this wake-up had their turn.
func (ln *listener) acceptSome() {
	srv := ln.loop.srv
	for i := 0; i < acceptBudget; i++ {
		if !srv.reserve(ln.fe) && !ln.blockAtCap() {
			return
		}
		fd, peer, err := sock.Accept(ln.fd)
		if err != nil {
			srv.connDone(ln.fe)
		}
		switch {
		case err == nil:
			ln.accepted(fd, peer)
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			ln.pause(err)
			return
		default:
			// ECONNABORTED and friends concern one client that already
			// left; the next accept may well succeed.
			continue
		}
	}
	ln.loop.again = append(ln.loop.again, ln)
}

// pause stops accepting for acceptPause. Clients wait in the kernel backlog
// meanwhile instead of the loop spinning on an accept that cannot succeed.
func (ln *listener) pause(err error) {
	ln.paused = true
	ln.loop.wheel.Schedule(&ln.pauseTimer, acceptPause)
	now := ln.loop.now
	if now.Sub(ln.lastLog) < acceptLogEvery {
		ln.suppressed++
		return
	}
	ln.loop.srv.log.Warn().Err(err).Str("frontend", ln.fe.cfg.Name).Str("listen", ln.addr.String()).
		Int("pauses_not_logged", ln.suppressed).Float64("pause_seconds", acceptPause.Seconds()).
		Msg("out of file descriptors or memory; pausing this listener")
	ln.lastLog = now
	ln.suppressed = 0
}

// unpause runs from the timing wheel. Edge-triggered epoll will not report
// clients that queued during the pause again, so accept right away.
func (ln *listener) unpause() {
	ln.paused = false
	if ln.fd >= 0 {
		ln.acceptSome()
	}
}

// close stops accepting. The fd leaves the epoll set before it is closed:
// after an upgrade handed the socket to another process, a dup of it lives
// on there, and epoll would go on reporting it here.
func (ln *listener) close() {
	if ln.fd < 0 {
		return
	}
	ln.loop.wheel.Stop(&ln.pauseTimer)
	_ = ln.loop.poll.Delete(ln.fd)
	unix.Close(ln.fd)
	ln.fd = -1
	ln.loop.releaseSlot(ln.idx)
}
