package admin

import (
	"errors"
	"net/http"
)

// Need is the permission a route requires. Every route declares one, so an
// Authorizer can grant read-only access without knowing the routes.
type Need int

// The permissions, from least to most powerful.
const (
	// NeedRead covers reading stats, metrics, the page and the probes.
	NeedRead Need = iota
	// NeedOperate covers changing backend state or weight and closing
	// connections.
	NeedOperate
)

// String returns "read" or "operate".
func (n Need) String() string {
	if n == NeedOperate {
		return "operate"
	}
	return "read"
}

// Authorizer decides whether a request may use a route that needs need. It
// returns nil to allow; an error wrapping ErrUnauthenticated answers 401, any
// other error 403, with the error text as the JSON error.
type Authorizer func(r *http.Request, need Need) error

// ErrUnauthenticated is what an Authorizer wraps when the request carries no
// valid credentials at all, as opposed to credentials lacking the permission.
var ErrUnauthenticated = errors.New("unauthenticated")

// AllowAll is the Authorizer used when Options leaves it nil: the admin
// port listens on loopback by default, and access control comes from the
// network until tokens are configured.
func AllowAll(*http.Request, Need) error { return nil }
