package health

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// roleRule is what a database probe asks of a server's role.
type roleRule struct {
	// want is config.RolePrimary, RoleReplica or RoleAny; "" reads no role.
	want string
	// maxLag (postgres) and maxLagBytes (redis) hold replicas; 0: no limit.
	maxLag      time.Duration
	maxLagBytes int64
}

func newRoleRule(h config.Health) roleRule {
	return roleRule{want: h.Role, maxLag: h.MaxLag, maxLagBytes: int64(h.MaxLagBytes)}
}

// reads reports whether the probe must read the server's role.
func (r roleRule) reads() bool { return r.want != "" }

// lagLimited reports whether a replica's lag must be measured.
func (r roleRule) lagLimited() bool { return r.maxLag > 0 || r.maxLagBytes > 0 }

// accepts checks a role against the rule; what describes the server as the
// probe saw it ("replica of 10.0.0.5:6379") for the message.
func (r roleRule) accepts(role, what string) error {
	if r.want == config.RoleAny || r.want == role {
		return nil
	}
	return fmt.Errorf("%s, want %s", what, r.want)
}

// newDatabaseProbe builds the probe of check postgres, mysql or redis,
// with the password read now from the config's secret source; the
// password can be read again (SecretReloader).
func newDatabaseProbe(h config.Health) (probeFunc, *password, error) {
	converse, pw, err := newConversation(h)
	if err != nil {
		return nil, nil, err
	}
	return overTCP(converse), pw, nil
}

func newConversation(h config.Health) (conversation, *password, error) {
	pw := &password{src: h.Password}
	if err := pw.ReloadSecrets(); err != nil {
		return nil, nil, err
	}
	rule := newRoleRule(h)
	// Each probe builds its conversation with the password in force, so a
	// password read again reaches the next probe.
	switch h.Check {
	case config.CheckPostgres:
		return func(ctx context.Context, conn net.Conn) (seen, error) {
			return newPostgres(h.User, h.Database, pw.get(), rule).converse(ctx, conn)
		}, pw, nil
	case config.CheckMySQL:
		return func(ctx context.Context, conn net.Conn) (seen, error) {
			return (&mysql{user: h.User, password: pw.get(), rule: rule}).converse(ctx, conn)
		}, pw, nil
	}
	return func(ctx context.Context, conn net.Conn) (seen, error) {
		return newRedis(h.User, pw.get(), rule).converse(ctx, conn)
	}, pw, nil
}

// password is a probe's password, read from its source (a file, a
// variable, a systemd credential) at start and again on demand.
type password struct {
	src config.Secret
	v   atomic.Pointer[string]
}

// ReloadSecrets implements SecretReloader: it reads the password from its
// source; on error the one in use stays. The error names the source,
// never the value, and wraps ErrConfig.
func (p *password) ReloadSecrets() error {
	b, err := p.src.Read()
	if err != nil {
		return fmt.Errorf("health.password: %w: %w", err, ErrConfig)
	}
	v := string(b)
	p.v.Store(&v)
	return nil
}

// get returns the password in force; "" without one.
func (p *password) get() string {
	if v := p.v.Load(); v != nil {
		return *v
	}
	return ""
}
