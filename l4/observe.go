package l4

import (
	"errors"

	"github.com/splicerlb/splicer/pkg/backend"
)

// Observer receives what the data plane sees of a frontend's backends: the
// passive half of health checking. Its methods are called from event loops
// for every connection attempt, so they must be cheap and must not block.
type Observer interface {
	// ConnectFailed reports a connect to b that failed for reason.
	ConnectFailed(b *backend.Backend, reason backend.FailReason)
	// Reset reports an established connection that b broke.
	Reset(b *backend.Backend)
	// Served reports a connection to b that ended cleanly, both sides
	// having sent their FIN. A bare successful connect is not reported: a
	// backend that accepts and then resets every connection must still
	// build up a streak of failures.
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

// Backends returns the backends of frontend name now, in config order
// (SetBackends may change them), or nil for an unknown name; a known
// frontend with no backend yet (discovery) gives an empty, non-nil slice.
// The slice is shared: do not modify it.
func (s *Server) Backends(name string) []*backend.Backend {
	if fe := s.frontend(name); fe != nil {
		if bs := fe.set.Backends(); bs != nil {
			return bs
		}
		return []*backend.Backend{}
	}
	return nil
}

// CloseBackendConnections closes every connection of frontend name that is
// relaying to, or connecting to, b: what on_down = "close" does when b is
// marked down. The clients get a reset, since the conversation they were
// having is cut. It returns once every loop has been asked; the loops close
// the connections on their next turn.
func (s *Server) CloseBackendConnections(name string, b *backend.Backend) error {
	fe := s.frontend(name)
	if fe == nil {
		return ErrUnknownFrontend
	}
	s.postAll(func(l *loop) {
		for c := range l.conns {
			if c.fe == fe && c.be == b {
				c.close(closeResetClient)
			}
		}
	})
	return nil
}

// frontend finds a frontend by name; the list is fixed after NewServer.
func (s *Server) frontend(name string) *frontend {
	for _, fe := range s.frontends {
		if fe.cfg.Name == name {
			return fe
		}
	}
	return nil
}
