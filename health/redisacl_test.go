package health

import (
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

// TestRealRedisACLUser logs the redis probe in as a Redis 6 ACL user
// (health.user), with the least the probe needs (PING, ROLE): up with the
// user's password, refused with the default user's, and a role read. A
// user the server does not allow ROLE is told apart from a wrong password.
func TestRealRedisACLUser(t *testing.T) {
	rs := realdb.StartRedis(t, "--requirepass", "default-pass")
	if v := rs.Do(t, "ACL", "SETUSER", "probe", "on", ">probe-pass", "+ping", "+role"); v.Kind != resp.SimpleString {
		t.Fatalf("ACL SETUSER: %v", v)
	}
	if v := rs.Do(t, "ACL", "SETUSER", "pingonly", "on", ">ping-pass", "+ping"); v.Kind != resp.SimpleString {
		t.Fatalf("ACL SETUSER: %v", v)
	}
	t.Setenv("SPLICER_TEST_PROBE_PW", "probe-pass")
	t.Setenv("SPLICER_TEST_DEFAULT_PW", "default-pass")
	t.Setenv("SPLICER_TEST_PING_PW", "ping-pass")
	checker := func(user, env, role string) Checker {
		c, err := NewChecker(config.Health{Check: "redis", User: user, Role: role, Password: config.Secret{Env: env}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := rs.Addr.String()
	checkResult(t, checker("probe", "SPLICER_TEST_PROBE_PW", ""), rs.Addr, 0, true, "redis probe "+a+": PONG")
	checkResult(t, checker("probe", "SPLICER_TEST_PROBE_PW", config.RolePrimary), rs.Addr, 0, true, "redis probe "+a+": master")
	// The default user's password is not the probe user's.
	checkResult(t, checker("probe", "SPLICER_TEST_DEFAULT_PW", ""), rs.Addr, 0, false,
		"redis probe "+a+`: AUTH reply "-WRONGPASS invalid username-password pair or user is disabled.": password rejected`)
	// Without a user the probe is the default user, as before.
	checkResult(t, checker("", "SPLICER_TEST_DEFAULT_PW", ""), rs.Addr, 0, true, "redis probe "+a+": PONG")
	// A user without ROLE (nor INFO) cannot have its role read.
	checkResult(t, checker("pingonly", "SPLICER_TEST_PING_PW", config.RolePrimary), rs.Addr, 0, false, "redis probe "+a+
		`: INFO replication reply "-NOPERM this user has no permissions to run the 'info' command": the probe user lacks a permission`)
}
