package admin

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
)

// minAuditKey is the shortest audit key accepted: below 128 bits an HMAC
// key can be searched.
const minAuditKey = 16

// Access is what the admin port authenticates against, read from the
// files and secrets the config names: the users, the socket grants, the TLS
// certificate and client CAs, the audit key. LoadAccess builds one; a
// Security serves the one it was last given. It holds no open file.
type Access struct {
	// users is nil when no users file is configured: anonymous read-only
	// access on loopback and the socket.
	users  *Users
	grants []socketGrant
	// tls is the TCP listener's TLS configuration; nil without TLS.
	tls      *tls.Config
	auditKey []byte
	hosts    []string
}

// socketGrant is one socket_roles entry, resolved to a uid or a gid.
type socketGrant struct {
	key   string // as written: "user:root"
	byUID bool
	id    uint32
	role  Role
}

// LoadAccess reads everything cfg's [admin] names: the users file (with the
// permission checks of a secret file), the socket_roles users and groups,
// the TLS certificate, key and client CAs, and the audit key. It has no
// other effect, so `splicer check` calls it as the daemon does. The error
// joins one error per setting, each naming the setting and never a secret;
// an error wrapping config.ErrSecretUnavailable is a secret this process's
// environment lacks (an unset variable, no $CREDENTIALS_DIRECTORY).
func LoadAccess(cfg *config.Config) (*Access, error) {
	ac := cfg.Admin
	a := &Access{hosts: ac.Hosts}
	var errs []error
	add := func(key string, err error) { errs = append(errs, fmt.Errorf("admin.%s: %w", key, err)) }
	if ac.UsersFile != "" {
		users, err := LoadUsers(ac.UsersFile)
		switch {
		case err != nil:
			errs = append(errs, err)
		default:
			for _, u := range users.List() {
				if err := checkRoleScope(u.Role, cfg); err != nil {
					add("users_file", fmt.Errorf("%s:%d: user %q: %w", ac.UsersFile, u.Line, u.Name, err))
				}
			}
			a.users = users
		}
	}
	for _, sr := range ac.SocketRoles {
		g, err := resolveGrant(sr)
		if err != nil {
			add("socket_roles", err)
			continue
		}
		a.grants = append(a.grants, g)
	}
	if ac.TLSCert != "" {
		t, err := loadTLS(ac)
		if err != nil {
			errs = append(errs, err)
		}
		a.tls = t
	}
	if ac.AuditLog != "" {
		key, err := ac.AuditKey.Read()
		switch {
		case err != nil:
			add("audit_key", err)
		case len(key) < minAuditKey:
			add("audit_key", fmt.Errorf("%s holds %d bytes; use at least %d random bytes, such as `openssl rand -hex 32`",
				ac.AuditKey, len(key), minAuditKey))
		}
		a.auditKey = key
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// resolveGrant looks up a socket_roles entry's user or group.
func resolveGrant(sr config.SocketRole) (socketGrant, error) {
	who := sr.Kind + ":" + sr.Name
	role, err := ParseRole(sr.Role)
	if err != nil {
		return socketGrant{}, fmt.Errorf("%s: %w", who, err)
	}
	g := socketGrant{key: who, role: role, byUID: sr.Kind == "user" || sr.Kind == "uid"}
	id := sr.Name
	switch sr.Kind {
	case "user":
		u, err := user.Lookup(sr.Name)
		if err != nil {
			return socketGrant{}, fmt.Errorf("%s: %w", who, err)
		}
		id = u.Uid
	case "group":
		grp, err := user.LookupGroup(sr.Name)
		if err != nil {
			return socketGrant{}, fmt.Errorf("%s: %w", who, err)
		}
		id = grp.Gid
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return socketGrant{}, fmt.Errorf("%s: id %q is not a number", who, id)
	}
	g.id = uint32(n)
	return g, nil
}

// loadTLS reads the certificate chain, the key (a secret) and the client
// CAs. Errors name the files and never repeat key material.
func loadTLS(ac config.Admin) (*tls.Config, error) {
	certPEM, err := os.ReadFile(ac.TLSCert)
	if err != nil {
		return nil, fmt.Errorf("admin.tls_cert: %w", err)
	}
	keyPEM, err := ac.TLSKey.Read()
	if err != nil {
		return nil, fmt.Errorf("admin.tls_key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("admin.tls_cert %s with admin.tls_key %s: %w", ac.TLSCert, ac.TLSKey, err)
	}
	t := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
	if ac.TLSClientCA != "" {
		pool, err := loadCertPool(ac.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("admin.tls_client_ca: %w", err)
		}
		t.ClientCAs = pool
		t.ClientAuth = tls.VerifyClientCertIfGiven
		if ac.TLSClientAuth == config.TLSClientRequire {
			t.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return t, nil
}

// loadCertPool reads a PEM bundle of certificates.
func loadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Users returns the users in force, nil when no users file is configured.
func (a *Access) Users() *Users { return a.users }

// TLS reports whether the TCP listener is to speak TLS.
func (a *Access) TLS() bool { return a.tls != nil }

// Security is the admin port's access control in force: the current
// Access, the browser sessions, the failed-login limiter and the audit log.
// Its methods are safe for concurrent use.
type Security struct {
	log      zerolog.Logger
	access   atomic.Pointer[Access]
	audit    *Audit
	sessions *sessionStore
	failures *failureLimiter
	// auditPath and tlsOn are fixed at start: changing them takes new
	// files or listeners, which a reload of secrets does not open.
	auditPath string
	tlsOn     bool
	mu        sync.Mutex // serialises Apply
}

// NewSecurity serves a, opening the audit log when cfg names one. Close
// releases the audit log.
func NewSecurity(cfg *config.Config, a *Access, log zerolog.Logger) (*Security, error) {
	s := &Security{
		log:       log,
		sessions:  newSessionStore(),
		failures:  newFailureLimiter(),
		auditPath: cfg.Admin.AuditLog,
		tlsOn:     a.tls != nil,
	}
	if cfg.Admin.AuditLog != "" {
		audit, err := OpenAudit(cfg.Admin.AuditLog, a.auditKey, AuditOptions{
			MaxSize: int64(cfg.Admin.AuditMaxSize), Keep: cfg.Admin.AuditKeep})
		if err != nil {
			return nil, err
		}
		s.audit = audit
	}
	s.access.Store(a)
	return s, nil
}

// ReadOnly returns a Security without users or audit log: what the admin
// port serves on loopback when [admin] names neither.
func ReadOnly(log zerolog.Logger) *Security {
	s := &Security{log: log, sessions: newSessionStore(), failures: newFailureLimiter()}
	s.access.Store(&Access{})
	return s
}

// Reload reads cfg's users, socket grants, TLS files and audit key again
// and serves them from the next request on; on any error nothing changes.
// This is the secret rotation that SIGHUP (and the daemon's reload) runs.
func (s *Security) Reload(cfg *config.Config) error {
	a, err := LoadAccess(cfg)
	if err != nil {
		return err
	}
	return s.Apply(cfg, a)
}

// Apply serves a from the next request on. Browser sessions whose user was
// removed or given a new token end. A new audit key starts a new audit
// file (see Audit.SetKey). Changes that need files or listeners opened
// (another audit_log path, TLS turned on or off) are refused: they take a
// restart.
func (s *Security) Apply(cfg *config.Config, a *Access) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg.Admin.AuditLog != s.auditPath {
		return fmt.Errorf("admin.audit_log changed from %q to %q: that takes a restart", s.auditPath, cfg.Admin.AuditLog)
	}
	if (a.tls != nil) != s.tlsOn {
		return errors.New("admin TLS was turned on or off: that takes a restart")
	}
	if s.audit != nil {
		if err := s.audit.SetKey(a.auditKey); err != nil {
			return fmt.Errorf("admin.audit_key: %w", err)
		}
	}
	s.access.Store(a)
	s.sessions.revokeStale(a.users)
	return nil
}

// Audit returns the audit log; nil when there is none.
func (s *Security) Audit() *Audit { return s.audit }

// TLSConfig returns the configuration for the TCP listener, nil without
// TLS. Every handshake takes the certificate and client CAs in force, so a
// reload rotates them without a new listener.
func (s *Security) TLSConfig() *tls.Config {
	if !s.tlsOn {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.access.Load().tls, nil
		},
	}
}

// Close closes the audit log.
func (s *Security) Close() error { return s.audit.Close() }
