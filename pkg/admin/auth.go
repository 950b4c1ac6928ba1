package admin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/splicerlb/splicer/pkg/config"
)

// Perm is a permission a route requires. Every route in the route table
// names one; the zero value names none and is refused to everyone, so a
// route cannot be added open by omission.
//
// To add a permission: add the constant before numPerms, its name to
// permNames, and grant it in rolePerms. The RBAC matrix test derives every expected answer from these
// tables and the route table.
type Perm uint8

// The permissions.
const (
	// permUnset is the zero value: a route that names no permission.
	permUnset Perm = iota
	// PermPublic is served without credentials: the probes, the page's
	// HTML (it holds no data) and the login itself.
	PermPublic
	// PermStatsRead covers the stats, the metrics and who am I.
	PermStatsRead
	// PermConnectionsRead covers listing connections, which shows client
	// addresses.
	PermConnectionsRead
	// PermBackendState covers drain, ready and maint.
	PermBackendState
	// PermBackendWeight covers changing a backend's weight.
	PermBackendWeight
	// PermConnectionKill covers closing a connection.
	PermConnectionKill
	// PermAuditRead covers the audit checkpoint.
	PermAuditRead
	// PermReload covers reloading the configuration.
	PermReload
	// PermUpgrade covers a binary upgrade.
	PermUpgrade
	numPerms
)

var permNames = [numPerms]string{
	permUnset:           "unset",
	PermPublic:          "public",
	PermStatsRead:       "stats.read",
	PermConnectionsRead: "connections.read",
	PermBackendState:    "backend.state",
	PermBackendWeight:   "backend.weight",
	PermConnectionKill:  "connection.kill",
	PermAuditRead:       "audit.read",
	PermReload:          "reload",
	PermUpgrade:         "upgrade",
}

// String returns the permission's name, as the 403 answers and the docs
// spell it.
func (p Perm) String() string {
	if p < numPerms {
		return permNames[p]
	}
	return fmt.Sprintf("Perm(%d)", uint8(p))
}

// rolePerms is the role table: what each role may do. Each role holds the
// one below it. User management has no route: it is done on the users file
// with `splicer user`, so the permission to change users is write access to
// that file.
var rolePerms = func() map[string][]Perm {
	viewer := []Perm{PermStatsRead, PermConnectionsRead}
	operator := append(slices.Clone(viewer), PermBackendState, PermBackendWeight, PermConnectionKill)
	admin := append(slices.Clone(operator), PermAuditRead, PermReload, PermUpgrade)
	return map[string][]Perm{
		config.RoleViewer:   viewer,
		config.RoleOperator: operator,
		config.RoleAdmin:    admin,
	}
}()

// Role is a role, possibly scoped to some frontends.
type Role struct {
	// Name is config.RoleViewer, RoleOperator or RoleAdmin.
	Name string
	// Frontends limits the role to these frontends; nil means all. The
	// scope applies to what names a frontend: changing its backends, and
	// listing or closing its connections (which show client addresses).
	// Stats and metrics, aggregate counters of the whole process, stay
	// visible to every role.
	Frontends []string
}

// ParseRole reads a role as the users file and socket_roles write it:
// "viewer", "operator:pg,redis".
func ParseRole(s string) (Role, error) {
	name, fronts, err := config.ParseRole(s)
	if err != nil {
		return Role{}, err
	}
	return Role{Name: name, Frontends: fronts}, nil
}

// String writes the role as ParseRole reads it.
func (r Role) String() string {
	if r.Frontends == nil {
		return r.Name
	}
	return r.Name + ":" + strings.Join(r.Frontends, ",")
}

// Can reports whether the role grants p. PermPublic is granted to all.
func (r Role) Can(p Perm) bool {
	return p == PermPublic || p != permUnset && slices.Contains(rolePerms[r.Name], p)
}

// Covers reports whether the role may act on frontend.
func (r Role) Covers(frontend string) bool {
	return r.Frontends == nil || slices.Contains(r.Frontends, frontend)
}

// Perms lists what the role grants, for the page and GET /api/v1/session.
func (r Role) Perms() []string {
	var out []string
	for _, p := range rolePerms[r.Name] {
		out = append(out, p.String())
	}
	return out
}

// How a Principal authenticated.
const (
	ViaToken     = "token"     // Authorization: Bearer
	ViaSession   = "session"   // the page's session cookie
	ViaCert      = "cert"      // a verified TLS client certificate
	ViaPeer      = "peer"      // the socket peer's uid or gid (socket_roles)
	ViaAnonymous = "anonymous" // no users configured: read-only
)

// Transports a request can arrive on.
const (
	TransportTCP  = "tcp"
	TransportTLS  = "tls"
	TransportUnix = "unix"
)

// Principal is who made a request: set on the request's call by the
// authentication step, read by handlers and the audit log.
type Principal struct {
	// User is the user's name from the users file; for a socket peer the
	// socket_roles entry that matched ("user:root"); "" when anonymous.
	User string
	Role Role
	// Via is how the principal authenticated: ViaToken, ViaSession, ...
	Via string
	// Transport is TransportTCP, TransportTLS or TransportUnix.
	Transport string
	// Source is the client: its address, or the socket peer's
	// credentials ("pid=41 uid=0 gid=0").
	Source string

	// csrf is the session's CSRF token; "" unless Via is ViaSession.
	csrf string
}
