package l4

import (
	"errors"

	"github.com/splicerlb/splicer/pkg/backend"
)

// Observer receives what the data plane sees of a frontend's backends: the
// passive half of health checking. Its methods are called from event loops
// for every connection attempt, so they must be cheap and must not block.
type Observer interface {
	// ConnectFailed reports a connect to b that failed for reason: refused,
	// timed out, unreachable or reset during the handshake (UDP: an ICMP
	// error for a flow that had no reply). Local failures (out of fds,
	// ports or memory) are never reported.
	ConnectFailed(b *backend.Backend, reason backend.FailReason)
	// Reset reports an established connection that b broke (its socket
	// failed) before sending a single byte. A reset after b sent data is
	// not reported: servers answer a client that broke their protocol that
	// way, and clients must not be able to take a backend down.
	Reset(b *backend.Backend)
	// Served reports that b proved it serves: a connection to it got its
	// first byte from b (UDP: a flow its first reply), or ended cleanly,
	// both sides having sent their FIN, without b sending any. A bare
	// successful connect is not reported: a backend that accepts and then
	// resets every connection must still build up a streak of failures.
	Served(b *backend.Backend)
}

// ErrUnknownFrontend is returned for a frontend name the server lacks.
var ErrUnknownFrontend = errors.New("l4: unknown frontend")

// Observe sets the observer of frontend name. It must be called before
// Start; the observer is read without synchronisation by the loops.
func (s *Server) Observe(name string, o Observer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("l4: Observe after Start")
	}
	fe := s.frontend(name)
	if fe == nil {
		return ErrUnknownFrontend
	}
	fe.observer = o
	return nil
}

// Backends returns the backends of frontend name in config order, or nil
// for an unknown name; a known frontend with no backend (one whose
// discovery has not answered yet) gives an empty, non-nil slice. The slice
// is shared: do not modify it.
func (s *Server) Backends(name string) []*backend.Backend {
	if fe := s.frontend(name); fe != nil {
		if fe.backends == nil {
			return []*backend.Backend{}
		}
		return fe.backends
	}
	return nil
}

// CloseBackendConnections closes every connection of frontend name that is
// relaying to, or connecting to, b: what on_down = "close" does when b is
// marked down. They end with cause CauseBackendDown, and both peers get a
// reset, since the conversation they were having is cut. It returns, with
// the number closed, once every loop has closed them.
func (s *Server) CloseBackendConnections(name string, b *backend.Backend) (int, error) {
	fe := s.frontend(name)
	if fe == nil {
		return 0, ErrUnknownFrontend
	}
	n := 0
	s.eachLoop(func(l *loop) {
		for c := range l.conns {
			if c.fe.frontendShared == fe.frontendShared && c.be == b {
				c.end(CauseBackendDown)
				n++
			}
		}
	})
	return n, nil
}

// frontend finds a frontend's current generation by name.
func (s *Server) frontend(name string) *frontend {
	for _, fe := range s.frontendList() {
		if fe.cfg.Name == name {
			return fe
		}
	}
	return nil
}
