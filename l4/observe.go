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

// frontend finds a frontend's current generation by name.
func (s *Server) frontend(name string) *frontend {
	for _, fe := range s.frontendList() {
		if fe.cfg.Name == name {
			return fe
		}
	}
	return nil
}
