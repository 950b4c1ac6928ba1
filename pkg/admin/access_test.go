package admin

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// loadAdminConfig writes a config whose [admin] holds admin (TOML lines)
// and loads it.
func loadAdminConfig(t *testing.T, dir, admin string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "splicer.toml")
	text := "[admin]\n" + admin + "\n\n[[frontend]]\nname = \"pg\"\nlisten = \"127.0.0.1:0\"\n[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestLoadAccessRefusals loads the files and secrets [admin] names when
// each is wrong in a way an operator can get it wrong: every problem is
// reported at once, each naming its setting and file, and none repeats a
// key.
func TestLoadAccessRefusals(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", 10, true)
	_, otherKey := ca.Issue(t, "127.0.0.1", 11, true)
	files := map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"admin.crt": {certPEM, 0o644}, "admin.key": {keyPEM, 0o600}, "other.key": {otherKey, 0o600},
		"ca.pem": {ca.PEM, 0o644}, "not-a-ca.pem": {[]byte("not a certificate\n"), 0o644},
		"short.key": {[]byte("12345678"), 0o600}, "audit.key": {auditKey, 0o600},
		"users": {[]byte("ada admin -\nrita operator:pg,redis -\n"), 0o600},
	}
	for name, f := range files {
		writeTestFile(t, filepath.Join(dir, name), f.data, f.mode)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	tlsKeys := func(cert, key, ca string) string {
		s := fmt.Sprintf("tls_cert = %q\ntls_key = { file = %q }\n", p(cert), p(key))
		if ca != "" {
			s += fmt.Sprintf("tls_client_ca = %q\n", p(ca))
		}
		return s
	}
	socket := fmt.Sprintf("listen = \"127.0.0.1:0\"\nsocket = %q\n", filepath.Join(dir, "admin.sock"))

	for _, tc := range []struct {
		name, admin string
		want        string // the error; "" when it loads
	}{
		{"everything right", "listen = \"127.0.0.1:0\"\n" + tlsKeys("admin.crt", "admin.key", "ca.pem") +
			fmt.Sprintf("audit_log = %q\naudit_key = { file = %q }\n", p("audit.log"), p("audit.key")) +
			fmt.Sprintf("socket = %q\nsocket_roles = { \"user:root\" = \"admin\", \"group:root\" = \"viewer\", \"uid:4242\" = \"operator:pg\" }\n", p("admin.sock")), ""},
		{"a user scoped to a frontend the config lacks", fmt.Sprintf("listen = \"127.0.0.1:0\"\nusers_file = %q\n", p("users")),
			fmt.Sprintf(`admin.users_file: %s:2: user "rita": role operator:pg,redis: %s has no frontend "redis"`, p("users"), p("splicer.toml"))},
		{"a users file that is gone", fmt.Sprintf("listen = \"127.0.0.1:0\"\nusers_file = %q\n", p("gone")),
			fmt.Sprintf(`admin.users_file: file %q: no such file or directory`, p("gone"))},
		{"socket roles for a user and a group that do not exist", socket +
			"socket_roles = { \"user:splicer-no-such-user\" = \"admin\", \"group:splicer-no-such-group\" = \"viewer\" }",
			"admin.socket_roles: group:splicer-no-such-group: group: unknown group splicer-no-such-group\n" +
				"admin.socket_roles: user:splicer-no-such-user: user: unknown user splicer-no-such-user"},
		{"a certificate that is gone", "listen = \"127.0.0.1:0\"\n" + tlsKeys("gone.crt", "admin.key", ""),
			"admin.tls_cert: open " + p("gone.crt") + ": no such file or directory"},
		{"a key of another certificate", "listen = \"127.0.0.1:0\"\n" + tlsKeys("admin.crt", "other.key", ""),
			fmt.Sprintf(`admin.tls_cert %s with admin.tls_key file %q: tls: private key does not match public key`, p("admin.crt"), p("other.key"))},
		{"client CAs that are not PEM", "listen = \"127.0.0.1:0\"\n" + tlsKeys("admin.crt", "admin.key", "not-a-ca.pem"),
			"admin.tls_client_ca: " + p("not-a-ca.pem") + " holds no PEM certificate"},
		{"client CAs that are gone", "listen = \"127.0.0.1:0\"\n" + tlsKeys("admin.crt", "admin.key", "gone.pem"),
			"admin.tls_client_ca: open " + p("gone.pem") + ": no such file or directory"},
		{"an audit key too short", fmt.Sprintf("listen = \"127.0.0.1:0\"\naudit_log = %q\naudit_key = { file = %q }\n", p("audit.log"), p("short.key")),
			fmt.Sprintf("admin.audit_key: file %q holds 8 bytes; use at least 16 random bytes, such as `openssl rand -hex 32`", p("short.key"))},
		{"an audit key in an unset variable", fmt.Sprintf("listen = \"127.0.0.1:0\"\naudit_log = %q\naudit_key = { env = \"SPLICER_TEST_UNSET_AUDIT_KEY\" }\n", p("audit.log")),
			"admin.audit_key: env SPLICER_TEST_UNSET_AUDIT_KEY: variable unset: not available in this environment"},
		{"several at once", fmt.Sprintf("listen = \"127.0.0.1:0\"\nusers_file = %q\naudit_log = %q\naudit_key = { file = %q }\n", p("gone"), p("audit.log"), p("short.key")),
			fmt.Sprintf("admin.users_file: file %q: no such file or directory\n", p("gone")) +
				fmt.Sprintf("admin.audit_key: file %q holds 8 bytes; use at least 16 random bytes, such as `openssl rand -hex 32`", p("short.key"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadAdminConfig(t, dir, tc.admin)
			a, err := LoadAccess(cfg)
			if tc.want == "" {
				if err != nil || !a.TLS() || len(a.grants) != 3 {
					t.Fatalf("load: %v, %+v", err, a)
				}
				for _, g := range a.grants {
					if want := map[string]uint32{"user:root": 0, "group:root": 0, "uid:4242": 4242}[g.key]; g.id != want {
						t.Errorf("%s resolved to %d, want %d", g.key, g.id, want)
					}
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("load: %v\nwant: %s", err, tc.want)
			}
			// The daemon tells a secret its environment lacks from one
			// that is wrong (systemd's credentials come later).
			if unavailable := strings.Contains(tc.name, "unset"); errors.Is(err, config.ErrSecretUnavailable) != unavailable {
				t.Errorf("errors.Is(%v, ErrSecretUnavailable) is %v", err, !unavailable)
			}
			if err != nil && (strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "12345678")) {
				t.Errorf("the error repeats a key: %v", err)
			}
		})
	}
}

// TestLoadAccessHandBuilt gives LoadAccess a config made by hand rather
// than loaded, as an embedder may: socket grants the loader would have
// refused are refused here too.
func TestLoadAccessHandBuilt(t *testing.T) {
	cfg := &config.Config{Admin: config.Admin{SocketRoles: []config.SocketRole{
		{Kind: "uid", Name: "x", Role: "viewer"},
		{Kind: "gid", Name: "0", Role: "root"},
	}}}
	_, err := LoadAccess(cfg)
	want := `admin.socket_roles: uid:x: id "x" is not a number` + "\n" +
		`admin.socket_roles: gid:0: role "root" is not one of viewer, operator, admin (optionally followed by :FRONTEND,...)`
	if err == nil || err.Error() != want {
		t.Errorf("load: %v\nwant: %s", err, want)
	}
}

// TestSecurityApplyRefusals starts the admin port's security with an audit
// log and reloads configs that need a restart: refused, naming why, and
// the access in force stays.
func TestSecurityApplyRefusals(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "audit.key"), auditKey, 0o600)
	log := filepath.Join(dir, "audit.log")
	admin := fmt.Sprintf("listen = \"127.0.0.1:0\"\naudit_log = %q\naudit_key = { file = %q }\n", log, filepath.Join(dir, "audit.key"))
	cfg := loadAdminConfig(t, dir, admin)
	a, err := LoadAccess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := NewSecurity(cfg, a, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Close()
	if sec.Audit() == nil || sec.Audit().Checkpoint().File != log {
		t.Fatalf("the audit log was not opened at %s", log)
	}
	if _, err := NewSecurity(cfg, a, zerolog.Nop()); err == nil || err.Error() != "audit log "+log+": in use by another process" {
		t.Errorf("a second daemon on the same audit log: %v", err)
	}

	moved := loadAdminConfig(t, t.TempDir(), strings.Replace(admin, log, log+".new", 1))
	if err := sec.Reload(moved); err == nil ||
		err.Error() != fmt.Sprintf("admin.audit_log changed from %q to %q: that takes a restart", log, log+".new") {
		t.Errorf("a new audit_log path: %v", err)
	}
	tlsOn := &Access{tls: &tls.Config{}}
	if err := sec.Apply(cfg, tlsOn); err == nil || err.Error() != "admin TLS was turned on or off: that takes a restart" {
		t.Errorf("TLS turned on: %v", err)
	}
	if sec.access.Load() != a {
		t.Error("a refused reload changed the access in force")
	}
	if err := sec.Reload(cfg); err != nil {
		t.Errorf("the same config again: %v", err)
	}
}
