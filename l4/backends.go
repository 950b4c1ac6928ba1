package l4

import (
	"errors"
	"fmt"

	"github.com/splicerlb/splicer/pkg/backend"
)

// ErrStaticBackends is returned by SetBackends for a UDP frontend, whose
// backends are fixed at NewServer.
var ErrStaticBackends = errors.New("l4: the backends of a udp frontend cannot change at runtime")

// SetBackends makes specs the backends of TCP frontend name, merged by
// identity as backend.Set.Apply does: a backend whose spec is unchanged
// keeps its connections, counters and health. Once it returns, no new
// connection goes to a removed backend; connections it already holds stay
// until they end or the caller closes them with CloseBackendConnections.
// It returns the backends that joined and left. Safe from any goroutine,
// before or after Start.
func (s *Server) SetBackends(name string, specs []backend.Spec) (added, removed []*backend.Backend, err error) {
	fe := s.frontend(name)
	switch {
	case fe == nil:
		return nil, nil, ErrUnknownFrontend
	case fe.peers != nil:
		return nil, nil, ErrStaticBackends
	}
	added, removed, err = fe.set.Apply(specs)
	if err != nil {
		return nil, nil, fmt.Errorf("frontend %q: %w", name, err)
	}
	return added, removed, nil
}
