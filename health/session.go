package health

import (
	"context"
	"sync/atomic"
)

// session is what the probes of one target keep from one check to the
// next: the connection an http probe left open for the next one, and the
// count of connections the probes opened. The Scheduler gives each target
// one and passes it down in the probe's ctx; only that target's goroutine
// probes with it, so idle needs no lock. A Check without a session (a
// Checker called on its own) opens and closes a connection every time.
type session struct {
	// idle is an open connection whose last exchange ended cleanly,
	// with nothing unread; nil when none.
	idle *httpConn
	// opened counts the connections (UDP: connected sockets) the
	// target's probes opened; read by State from any goroutine.
	opened atomic.Uint64
}

// sessionKey is the context key of a probe's session.
type sessionKey struct{}

// withSession returns ctx carrying s for one probe.
func withSession(ctx context.Context, s *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// sessionOf returns the session ctx carries, or nil.
func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// take hands the idle connection over to a probe, which then owns it;
// nil when there is none.
func (s *session) take() *httpConn {
	hc := s.idle
	s.idle = nil
	return hc
}

// keep stores hc for the next probe.
func (s *session) keep(hc *httpConn) {
	s.close()
	s.idle = hc
}

// close closes the idle connection, if any: the target is no longer
// probed, or not for a while.
func (s *session) close() {
	if s.idle != nil {
		s.idle.conn.Close()
		s.idle = nil
	}
}

// countOpen records a connection a probe under ctx opened.
func countOpen(ctx context.Context) {
	if s := sessionOf(ctx); s != nil {
		s.opened.Add(1)
	}
}
