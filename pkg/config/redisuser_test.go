package config

import (
	"strings"
	"testing"
)

// TestRedisHealthUser: a redis check logs in as the default user unless
// health.user names an ACL user, which needs a password (AUTH user
// password); the postgres default user does not leak into it.
func TestRedisHealthUser(t *testing.T) {
	health := func(lines string) string {
		return demoFrontend + "  [frontend.health]\n  check = \"redis\"\n" + lines
	}
	cfg, err := Parse([]byte(health("")), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Frontends[0].Health.User; u != "" {
		t.Errorf("redis check without health.user logs in as %q, want the default user (\"\")", u)
	}
	cfg, err = Parse([]byte(health("  user = \"probe\"\n  password = { env = \"REDIS_PROBE_PASSWORD\" }\n")), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Frontends[0].Health.User; u != "probe" {
		t.Errorf("health.user = %q, want probe", u)
	}
	_, err = Parse([]byte(health("  user = \"probe\"\n")), "config.toml")
	want := `config.toml:8: frontend "demo": health.user: check "redis" logs in as a user with AUTH user password: set health.password too`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a redis user without a password: %v, want %q", err, want)
	}
}
