package admin

import (
	"errors"

	"github.com/splicerlb/splicer/pkg/stats"
)

// Source is what the admin server reads and controls; the daemon implements
// it. Every method must be safe to call from any goroutine at any time.
type Source interface {
	// Stats returns a consistent-enough snapshot of everything (counters
	// are read atomically one by one). The server never modifies it.
	Stats() stats.Stats
	// SetState sets a backend's admin state: "ready", "drain" or "maint".
	// The change must show in the next Stats call.
	SetState(frontend, backend, state string) error
	// SetWeight sets a backend's weight (1..256). The change must show in
	// the next Stats call.
	SetWeight(frontend, backend string, weight int) error
	// Connections lists live client connections of all frontends
	// (frontend == "") or one, ordered by ID, starting after ID `after`,
	// at most limit; total is the count matching the filter.
	Connections(frontend string, after uint64, limit int) (conns []stats.Conn, total int, err error)
	// CloseConnection closes one live connection by ID.
	CloseConnection(id uint64) error
	// Ready reports whether listeners are bound and the config is loaded.
	Ready() bool
}

// Errors a Source returns, mapped by the server to HTTP statuses with
// errors.Is. The Source wraps them with the name at fault, e.g.
// fmt.Errorf("frontend %q: %w", name, ErrNotFound); that text reaches the
// client as the JSON error.
var (
	ErrNotFound = errors.New("not found")       // unknown frontend, backend or connection -> 404
	ErrInvalid  = errors.New("invalid request") // bad state name, weight out of range -> 400
)
