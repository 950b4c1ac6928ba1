package config

import (
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Admin holds the admin port settings ([admin]). docs/security.md explains
// how they fit together.
type Admin struct {
	// Listen is the admin TCP address; "" disables the TCP listener.
	Listen string
	// Hosts are the names, besides IP literals and "localhost", accepted in
	// a request's Host header (DNS rebinding defence).
	Hosts []string
	// UsersFile lists the users, their roles and token digests; "" means
	// no users: the loopback listener and the socket serve read-only.
	UsersFile string

	// Socket is the path of the admin unix socket; "" for none.
	Socket string
	// SocketMode is the socket file's permission bits.
	SocketMode fs.FileMode
	// SocketGroup owns the socket file when set (a name or a gid).
	SocketGroup string
	// SocketRoles grants roles to socket peers by their uid or gid,
	// sorted by key; a user or uid entry wins over a group or gid one.
	SocketRoles []SocketRole

	// TLSCert is the certificate chain (PEM) of the TCP listener; with
	// TLSKey it turns TLS on.
	TLSCert string
	TLSKey  Secret
	// TLSClientCA is the PEM bundle that client certificates are verified
	// against; "" asks for none.
	TLSClientCA string
	// TLSClientAuth is TLSClientOptional or TLSClientRequire.
	TLSClientAuth string

	// AuditLog is the tamper-evident audit log's path; "" for none.
	AuditLog string
	// AuditKey keys the audit log's HMAC chain; required with AuditLog.
	AuditKey Secret
	// AuditMaxSize is the size at which the audit log is rotated, in bytes.
	AuditMaxSize int
	// AuditKeep is how many rotated audit files are kept.
	AuditKeep int

	// MaxConnections caps the admin connections open at once (TCP and
	// socket together), apart from the data plane's.
	MaxConnections int
	// MaxRequests caps the admin requests being served at once; more are
	// answered 503 at once.
	MaxRequests int
}

// SocketRole grants Role to the admin socket's peers whose user or primary
// group (from SO_PEERCRED) is Name.
type SocketRole struct {
	// Kind is "user", "uid", "group" or "gid".
	Kind string
	// Name is the user or group name, or the number for uid and gid.
	Name string
	// Role is written as in the users file: "viewer", "operator:pg,redis".
	Role string
}

// Values of Admin.TLSClientAuth.
const (
	TLSClientOptional = "optional"
	TLSClientRequire  = "require"
)

// The admin roles, from least to most powerful. ParseRole accepts them,
// optionally scoped to frontends.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

// ParseRole splits a role as written in the users file or socket_roles:
// "viewer", "operator", "admin", optionally followed by ":" and a comma
// separated list of frontend names the role is limited to. frontends is
// nil for an unscoped role.
func ParseRole(s string) (role string, frontends []string, err error) {
	role, scope, scoped := strings.Cut(s, ":")
	switch role {
	case RoleViewer, RoleOperator, RoleAdmin:
	default:
		return "", nil, fmt.Errorf("role %q is not one of %s, %s, %s (optionally followed by :FRONTEND,...)",
			role, RoleViewer, RoleOperator, RoleAdmin)
	}
	if !scoped {
		return role, nil, nil
	}
	for _, fe := range strings.Split(scope, ",") {
		if !validName(fe) {
			return "", nil, fmt.Errorf("role %q: %q is not a frontend name", s, fe)
		}
		if slices.Contains(frontends, fe) {
			return "", nil, fmt.Errorf("role %q names frontend %q twice", s, fe)
		}
		frontends = append(frontends, fe)
	}
	return role, frontends, nil
}

type rawAdmin struct {
	Listen    *stringSetting `toml:"listen"`
	Hosts     *listSetting   `toml:"hosts"`
	UsersFile *stringSetting `toml:"users_file"`
	// TokensFile is the key users_file replaced; it is refused with a
	// pointer to its successor.
	TokensFile *stringSetting `toml:"tokens_file"`

	Socket      *stringSetting      `toml:"socket"`
	SocketMode  *modeSetting        `toml:"socket_mode"`
	SocketGroup *stringSetting      `toml:"socket_group"`
	SocketRoles *socketRolesSetting `toml:"socket_roles"`

	TLSCert       *stringSetting `toml:"tls_cert"`
	TLSKey        *secretSetting `toml:"tls_key"`
	TLSClientCA   *stringSetting `toml:"tls_client_ca"`
	TLSClientAuth *stringSetting `toml:"tls_client_auth"`

	AuditLog     *stringSetting `toml:"audit_log"`
	AuditKey     *secretSetting `toml:"audit_key"`
	AuditMaxSize *sizeSetting   `toml:"audit_max_size"`
	AuditKeep    *intSetting    `toml:"audit_keep"`

	MaxConnections *intSetting `toml:"max_connections"`
	MaxRequests    *intSetting `toml:"max_requests"`
}

// Defaults of [admin]; docs/configuration.md gives the reasons.
const (
	// The admin port listens on loopback only unless told otherwise: it can
	// drain backends and kill connections.
	defaultAdminListen = "127.0.0.1:9090"
	// Owner and group may connect: the group is how access is granted.
	defaultSocketMode = 0o660
	// A few dashboards, scrapers and operators at once; each connection is
	// an fd taken from the process's budget, so the cap is small.
	defaultAdminMaxConnections = 64
	defaultAdminMaxRequests    = 16
	defaultAuditMaxSize        = 64 << 20
	defaultAuditKeep           = 10
)

// Bounds of [admin] settings.
const (
	maxAdminConnections = 10000
	minAuditMaxSize     = 4 << 10
	maxAuditKeep        = 1000
)

func resolveAdmin(r *rawAdmin, ps *problems) Admin {
	if r == nil {
		r = &rawAdmin{}
	}
	sc := scope{ps: ps, key: "admin", label: "admin."}
	a := Admin{
		Listen:         get(sc, "listen", r.Listen, defaultAdminListen),
		Hosts:          get(sc, "hosts", r.Hosts, nil),
		UsersFile:      get(sc, "users_file", r.UsersFile, ""),
		Socket:         get(sc, "socket", r.Socket, ""),
		SocketMode:     get(sc, "socket_mode", r.SocketMode, defaultSocketMode),
		SocketGroup:    get(sc, "socket_group", r.SocketGroup, ""),
		SocketRoles:    get(sc, "socket_roles", r.SocketRoles, nil),
		TLSCert:        get(sc, "tls_cert", r.TLSCert, ""),
		TLSKey:         get(sc, "tls_key", r.TLSKey, Secret{}),
		TLSClientCA:    get(sc, "tls_client_ca", r.TLSClientCA, ""),
		AuditLog:       get(sc, "audit_log", r.AuditLog, ""),
		AuditKey:       get(sc, "audit_key", r.AuditKey, Secret{}),
		AuditMaxSize:   get(sc, "audit_max_size", r.AuditMaxSize, defaultAuditMaxSize),
		AuditKeep:      get(sc, "audit_keep", r.AuditKeep, defaultAuditKeep),
		MaxConnections: get(sc, "max_connections", r.MaxConnections, defaultAdminMaxConnections),
		MaxRequests:    get(sc, "max_requests", r.MaxRequests, defaultAdminMaxRequests),
	}
	clientAuth := ""
	if a.TLSClientCA != "" {
		clientAuth = TLSClientOptional
	}
	a.TLSClientAuth = get(sc, "tls_client_auth", r.TLSClientAuth, clientAuth)
	// Admin.Listen stays a string ("" disables the port); only check it.
	if a.Listen != "" {
		if _, err := parseAddrPort(a.Listen); err != nil {
			sc.addf("listen", "%v", err)
		}
	}
	if r.TokensFile != nil {
		sc.addf("tokens_file", "replaced by admin.users_file, a file of users with roles and token digests that `splicer user add` writes; see docs/security.md")
	}
	return a
}

// validateAdmin checks [admin] as a whole: what each transport needs, and
// settings that only mean something beside another.
func validateAdmin(a Admin, r *rawAdmin, fronts []Frontend, ps *problems) {
	if r == nil {
		r = &rawAdmin{}
	}
	sc := scope{ps: ps, key: "admin", label: "admin."}
	// An address that does not parse was reported by resolveAdmin.
	if ap, err := parseAddrPort(a.Listen); a.Listen != "" && err == nil {
		if !ap.Addr().Unmap().IsLoopback() && (a.UsersFile == "" || a.TLSCert == "") {
			sc.addf("listen", "%v is reachable from other hosts: it needs users_file (who may do what) and tls_cert with tls_key "+
				"(so tokens do not cross the network in clear); or listen on loopback, or use admin.socket", ap)
		}
	}
	for _, h := range a.Hosts {
		if !validHostName(h) {
			sc.addf("hosts", "%q is not a host name (letters, digits, - and ., no port)", h)
		}
	}

	onlyWith := func(field string, set bool, needs string, present bool) {
		if set && !present {
			sc.addf(field, "only applies with %s set", needs)
		}
	}
	onlyWith("socket_mode", r.SocketMode != nil, "socket", a.Socket != "")
	onlyWith("socket_group", r.SocketGroup != nil, "socket", a.Socket != "")
	onlyWith("socket_roles", r.SocketRoles != nil, "socket", a.Socket != "")
	if a.SocketMode&^fs.ModePerm != 0 {
		sc.addf("socket_mode", "must be permission bits between 0000 and 0777, got %#o", uint32(a.SocketMode))
	} else if a.Socket != "" && a.SocketMode&0o600 != 0o600 {
		sc.addf("socket_mode", "%04o does not let the owner (splicer itself) use the socket; include 0600", uint32(a.SocketMode))
	}
	if a.Socket != "" && !strings.HasPrefix(a.Socket, "/") {
		sc.addf("socket", "must be an absolute path, got %q", a.Socket)
	}
	for _, sr := range a.SocketRoles {
		if _, scopeFronts, err := ParseRole(sr.Role); err != nil {
			sc.addf("socket_roles", "%s:%s: %v", sr.Kind, sr.Name, err)
		} else {
			checkScope(sc, "socket_roles", sr.Kind+":"+sr.Name, scopeFronts, fronts)
		}
	}

	if (r.TLSCert == nil) != (r.TLSKey == nil) {
		sc.addf("tls_cert", "tls_cert and tls_key go together: set both or neither")
	}
	onlyWith("tls_client_ca", r.TLSClientCA != nil, "tls_cert", a.TLSCert != "")
	onlyWith("tls_client_auth", r.TLSClientAuth != nil, "tls_client_ca", a.TLSClientCA != "")
	if a.TLSClientAuth != "" {
		sc.oneOf("tls_client_auth", a.TLSClientAuth, TLSClientOptional, TLSClientRequire)
	}
	if a.Listen == "" && a.TLSCert != "" {
		sc.addf("tls_cert", "only applies with listen set (TLS is for the TCP listener)")
	}

	if a.AuditLog != "" && r.AuditKey == nil {
		sc.addf("audit_key", `required with audit_log: the key of the log's HMAC chain, such as { file = "/etc/splicer/audit.key" }`)
	}
	onlyWith("audit_key", r.AuditKey != nil, "audit_log", a.AuditLog != "")
	onlyWith("audit_max_size", r.AuditMaxSize != nil, "audit_log", a.AuditLog != "")
	onlyWith("audit_keep", r.AuditKeep != nil, "audit_log", a.AuditLog != "")
	if a.AuditMaxSize < minAuditMaxSize {
		sc.addf("audit_max_size", "must be at least %s, got %s", formatSize(minAuditMaxSize), formatSize(a.AuditMaxSize))
	}
	sc.between("audit_keep", a.AuditKeep, 0, maxAuditKeep)
	sc.between("max_connections", a.MaxConnections, 1, maxAdminConnections)
	sc.between("max_requests", a.MaxRequests, 1, maxAdminConnections)
	if a.Listen == "" && a.Socket == "" {
		for _, k := range []struct {
			field string
			set   bool
		}{{"users_file", r.UsersFile != nil}, {"audit_log", r.AuditLog != nil}, {"hosts", r.Hosts != nil}} {
			if k.set {
				sc.addf(k.field, "the admin port is disabled (listen and socket are empty), so this does nothing")
			}
		}
	}
}

// checkScope requires every frontend a role is scoped to to exist: a typo
// would leave the role with nothing to act on.
func checkScope(sc scope, field, who string, scopeFronts []string, fronts []Frontend) {
	for _, name := range scopeFronts {
		if !slices.ContainsFunc(fronts, func(f Frontend) bool { return f.Name == name }) {
			sc.addf(field, "%s: role is scoped to frontend %q, which is not configured", who, name)
		}
	}
}

// validHostName accepts the names a Host header may carry besides IP
// literals: DNS labels of letters, digits and hyphens.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// modeParser reads permission bits: an integer (write it in octal, 0o660)
// or a string of octal digits ("0660").
type modeParser struct{}

type modeSetting = setting[fs.FileMode, modeParser]

func (modeParser) parse(data any) (fs.FileMode, error) {
	switch v := data.(type) {
	case int64:
		if v < 0 || v > 0o7777 {
			return 0, fmt.Errorf("must be permission bits such as 0o660 or \"0660\", got %d", v)
		}
		return fs.FileMode(v), nil
	case string:
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n > 0o7777 {
			return 0, fmt.Errorf("%q is not octal permission bits such as \"0660\"", v)
		}
		return fs.FileMode(n), nil
	}
	return 0, fmt.Errorf(`must be permission bits such as 0o660 or "0660", got %s`, tomlType(data))
}

// socketRolesParser reads a table of "user:NAME", "uid:N", "group:NAME" or
// "gid:N" keys with role values.
type socketRolesParser struct{}

type socketRolesSetting = setting[[]SocketRole, socketRolesParser]

func (socketRolesParser) parse(data any) ([]SocketRole, error) {
	m, ok := data.(map[string]any)
	if !ok {
		return nil, fmt.Errorf(`must be a table such as { "user:root" = "admin", "group:splicer-ops" = "operator" }, got %s`, tomlType(data))
	}
	var out []SocketRole
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kind, name, _ := strings.Cut(k, ":")
		switch kind {
		case "user", "group":
			if name == "" {
				return nil, fmt.Errorf("key %q: name the %s after the colon", k, kind)
			}
		case "uid", "gid":
			if _, err := strconv.ParseUint(name, 10, 32); err != nil {
				return nil, fmt.Errorf("key %q: %q is not a number", k, name)
			}
		default:
			return nil, fmt.Errorf(`key %q: must be "user:NAME", "uid:N", "group:NAME" or "gid:N"`, k)
		}
		role, ok := m[k].(string)
		if !ok {
			return nil, fmt.Errorf("key %q: the role must be a string, got %s", k, tomlType(m[k]))
		}
		out = append(out, SocketRole{Kind: kind, Name: name, Role: role})
	}
	return out, nil
}
