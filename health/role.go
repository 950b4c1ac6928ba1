package health

import (
	"fmt"
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
// with the password read now from the config's secret source.
func newDatabaseProbe(h config.Health) (probeFunc, error) {
	converse, err := newConversation(h)
	if err != nil {
		return nil, err
	}
	return overTCP(converse), nil
}

// newConversation builds the conversation of check postgres, mysql or
// redis.
func newConversation(h config.Health) (conversation, error) {
	password, err := h.Password()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrConfig)
	}
	rule := newRoleRule(h)
	switch h.Check {
	case config.CheckPostgres:
		return newPostgres(h.User, h.Database, password, rule).converse, nil
	case config.CheckMySQL:
		return (&mysql{user: h.User, password: password, rule: rule}).converse, nil
	}
	return newRedis(password, rule).converse, nil
}
