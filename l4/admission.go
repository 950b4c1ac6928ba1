package l4

// Admission: what a client passes between accept and its first connect
// try. The listener accepts (listener.go); then, in order, the server's
// and the frontend's connection caps (reserve, blockAtCap), the access
// list and the per-client limits (accepted, admitClient; on an
// accept_proxy frontend, once the header has named the client, in
// proxy.go), and the connection starts (startConn in conn.go). A refusal
// here resets the client at once, counted under its cause and logged.
// connDone gives the reservation back when the connection ends.

import (
	"net/netip"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
)

// acl is a frontend's access list, checked at accept before any other work.
type acl struct {
	allow []netip.Prefix // when not empty, a client must match one
	deny  []netip.Prefix // a client matching one is refused, allowed or not
}

// admits reports whether a client may connect. Lists are short (a few
// networks), so a linear scan beats any index; an empty list costs nothing.
func (a *acl) admits(ip netip.Addr) bool {
	for _, p := range a.deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(a.allow) == 0 {
		return true
	}
	for _, p := range a.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// reserve counts one more client connection against the global and the
// frontend cap, or fails without counting when either is reached. The
// check and the count are one CAS each, so the caps hold exactly however
// many loops accept at once. A listener reserves before it accepts:
// a client that finds no room is left in the kernel's backlog, never
// accepted and dropped.
func (s *Server) reserve(fe *frontend) bool { return s.reserveAt(fe) == capNone }

// reserveAt is reserve, saying which cap refused.
func (s *Server) reserveAt(fe *frontend) int {
	if s.stopping.Load() {
		// Shutting down: loops that have not yet closed their listeners
		// take no new client, which could only be cut at the deadline.
		return capGlobal
	}
	if _, ok := reserveUnder(&s.active, s.maxConns.Load()); !ok {
		return capGlobal
	}
	if fe.cfg.MaxConnections > 0 {
		if _, ok := reserveUnder(&fe.active, int64(fe.cfg.MaxConnections)); !ok {
			s.active.Add(-1)
			return capFrontend
		}
	} else {
		fe.active.Add(1)
	}
	return capNone
}

// reserveUnder increments n unless it has reached max; it returns the
// new count.
func reserveUnder(n *atomic.Int64, max int64) (int64, bool) {
	for {
		cur := n.Load()
		if cur >= max {
			return cur, false
		}
		if n.CompareAndSwap(cur, cur+1) {
			return cur + 1, true
		}
	}
}

// connDone releases a reservation: a connection ended, or a reserved
// accept found no client or refused it. Listeners that stopped at the
// global cap are resumed on every loop, and those of fe that stopped at its
// own cap too.
func (s *Server) connDone(fe *frontend) {
	fe.active.Add(-1)
	if s.active.Add(-1) == 0 {
		s.checkDrained()
	}
	// A blocked flag is set by a listener before it re-checks for room,
	// so either that re-check sees this release or this load sees the flag.
	if s.blocked.Load() && s.blocked.CompareAndSwap(true, false) {
		s.postAll(func(l *loop) { l.resumeFull(nil) })
	} else if fe.blocked.Load() && fe.blocked.CompareAndSwap(true, false) {
		s.postAll(func(l *loop) { l.resumeFull(fe) })
	}
}

// accepted applies the checks made at accept to a new client and starts
// it. On an accept_proxy frontend, a trusted sender's client is checked
// once its header has said who it is (conn.headerRead); another sender is
// refused unless accept_proxy_optional serves it as it is.
func (ln *listener) accepted(fd int, peer netip.AddrPort) {
	srv, fe := ln.loop.srv, ln.fe
	header := false
	if fe.cfg.AcceptProxy {
		header = fe.trustedSender(peer.Addr())
		if !header && !fe.cfg.AcceptProxyOptional {
			ln.untrusted(fd, peer)
			srv.connDone(fe)
			return
		}
	}
	if !header {
		if !fe.acl.admits(peer.Addr()) {
			ln.deny(fd, peer)
			srv.connDone(fe)
			return
		}
		if !ln.admitClient(peer) {
			refuse(fd)
			srv.connDone(fe)
			return
		}
	}
	ln.loop.startConn(ln, fd, peer, header)
}

// admitClient applies the per-client limits, counting and logging a
// refusal by reason.
func (ln *listener) admitClient(peer netip.AddrPort) bool {
	t := ln.fe.clients
	if t == nil {
		return true
	}
	cause := CauseClientLimit
	switch t.admit(peer.Addr(), ln.loop.now) {
	case refusedNone:
		return true
	case refusedRate:
		cause = CauseRateLimit
	}
	ln.fe.closed[cause].Add(1)
	ln.logRefused(peer, cause)
	return false
}

// blockAtCap is called when a connection cap leaves no room. It raises
// the blocked flag of the cap that refused (the server's or the
// frontend's), then tries once more: a connection that ended between the
// failed reservation and the flag would not have seen the flag. It returns
// true with a reservation taken, or false with the listener marked full, to
// be resumed by the next release (Server.connDone).
func (ln *listener) blockAtCap() bool {
	srv := ln.loop.srv
	// Two rounds: the second may be refused by the other cap, whose flag
	// must then be raised too before the final check.
	for round := 0; round < 2; round++ {
		switch srv.reserveAt(ln.fe) {
		case capNone:
			return true
		case capGlobal:
			srv.blocked.Store(true)
		case capFrontend:
			ln.fe.blocked.Store(true)
		}
	}
	if srv.reserve(ln.fe) {
		return true
	}
	ln.full = true
	return false
}

// resumeFull accepts again on a listener that stopped at a cap, if it
// belongs to fe (nil: any frontend).
func (ln *listener) resumeFull(fe *frontend) {
	if fe != nil && ln.fe.frontendShared != fe.frontendShared {
		return
	}
	if ln.full && ln.fd >= 0 {
		ln.full = false
		if !ln.paused {
			ln.acceptSome()
		}
	}
}

// deny closes a client the access list refuses, before any other work,
// and counts and logs it.
func (ln *listener) deny(fd int, peer netip.AddrPort) {
	refuse(fd)
	ln.fe.closed[CauseDenied].Add(1)
	ln.logRefused(peer, CauseDenied)
	ln.noteDenied()
}

// noteDenied writes the daemon log's line about clients refused by the
// access list. Rather than a line per client (a scan could flood the log),
// a summary line goes out at most every acceptLogEvery; the connection log
// has each one.
func (ln *listener) noteDenied() {
	ln.deniedSince++
	if now := ln.loop.now; now.Sub(ln.deniedLog) >= acceptLogEvery {
		ln.loop.srv.log.Info().Str("frontend", ln.fe.cfg.Name).Str("listen", ln.addr.String()).
			Uint64("denied", ln.deniedSince).Msg("clients refused by the access list")
		ln.deniedLog = now
		ln.deniedSince = 0
	}
}

// refuse closes a client refused before it was served with a reset, as
// HAProxy's "tcp-request connection reject" does: the client learns at once
// that it was turned away, and the refusal leaves no TIME_WAIT behind.
func refuse(fd int) {
	_ = sock.SetLingerZero(fd)
	unix.Close(fd)
}
