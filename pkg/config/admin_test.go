package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// adminBadConfigs are invalid [admin] and secret settings with the exact
// report each must produce. They are FuzzLoad seeds too.
var adminBadConfigs = []struct {
	name string
	toml string
	want []string
}{
	{
		name: "non-loopback listener without users or TLS",
		toml: "[admin]\nlisten = \"0.0.0.0:9090\"\n" + demoFrontend,
		want: []string{`config.toml:2: admin.listen: 0.0.0.0:9090 is reachable from other hosts: it needs users_file (who may do what) ` +
			`and tls_cert with tls_key (so tokens do not cross the network in clear); or listen on loopback, or use admin.socket`},
	},
	{
		name: "non-loopback listener with users but no TLS",
		toml: "[admin]\nlisten = \"[::]:9090\"\nusers_file = \"/etc/splicer/users\"\n" + demoFrontend,
		want: []string{`config.toml:2: admin.listen: [::]:9090 is reachable from other hosts: it needs users_file (who may do what) ` +
			`and tls_cert with tls_key (so tokens do not cross the network in clear); or listen on loopback, or use admin.socket`},
	},
	{
		name: "tokens_file is refused with its successor named",
		toml: "[admin]\ntokens_file = \"/etc/splicer/tokens\"\n" + demoFrontend,
		want: []string{"config.toml:2: admin.tokens_file: replaced by admin.users_file, a file of users with roles and token digests " +
			"that `splicer user add` writes; see docs/security.md"},
	},
	{
		name: "audit log without a key, key without a log",
		toml: "[admin]\naudit_log = \"/var/lib/splicer/audit.log\"\naudit_keep = 1001\naudit_max_size = 100\n" + demoFrontend,
		want: []string{
			`config.toml:1: admin.audit_key: required with audit_log: the key of the log's HMAC chain, such as { file = "/etc/splicer/audit.key" }`,
			`config.toml:3: admin.audit_keep: must be between 0 and 1000, got 1001`,
			`config.toml:4: admin.audit_max_size: must be at least 4KiB, got 100B`,
		},
	},
	{
		name: "settings without the one they belong to",
		toml: "[admin]\naudit_key = { env = \"K\" }\nsocket_mode = \"0600\"\ntls_key = { file = \"/k\" }\ntls_client_auth = \"require\"\n" + demoFrontend,
		want: []string{
			`config.toml:1: admin.tls_cert: tls_cert and tls_key go together: set both or neither`,
			`config.toml:2: admin.audit_key: only applies with audit_log set`,
			`config.toml:3: admin.socket_mode: only applies with socket set`,
			`config.toml:5: admin.tls_client_auth: only applies with tls_client_ca set`,
		},
	},
	{
		name: "a secret written in clear is refused without being repeated",
		toml: "[admin]\naudit_log = \"/a\"\naudit_key = \"hunter2-the-key\"\n" + demoFrontend,
		want: []string{`config.toml:3: admin.audit_key: must be { file = "PATH" }, { env = "NAME" } or { credential = "NAME" }, ` +
			`got a string; the config names where a secret is kept, never the secret itself`},
	},
	{
		name: "secret tables with mistakes",
		toml: demoFrontend + `  [frontend.health]
  check = "redis"
  password = { fil = "/etc/pw" }
[[frontend]]
name = "b"
listen = "127.0.0.1:7002"
backend = [{ address = "127.0.0.1:7001" }]
health = { check = "redis", password = { env = "1BAD" } }
[[frontend]]
name = "c"
listen = "127.0.0.1:7003"
backend = [{ address = "127.0.0.1:7001" }]
health = { check = "redis", password = { env = "A", file = "/b" } }
`,
		want: []string{
			`config.toml:8: frontend "demo": health.password: unknown key "fil" in a secret (did you mean "file"?); ` +
				`write { file = "PATH" }, { env = "NAME" } or { credential = "NAME" }`,
			`config.toml:13: frontend "b": health.password: env: "1BAD" is not a variable name (A-Z a-z 0-9 _, not starting with a digit)`,
			`config.toml:18: frontend "c": health.password: must set exactly one of file, env, credential; got 2`,
		},
	},
	{
		name: "password on a check that sends none, old and new spellings together",
		toml: demoFrontend + `  [frontend.health]
  check = "tcp"
  password = { env = "PW" }
[[frontend]]
name = "b"
listen = "127.0.0.1:7002"
backend = [{ address = "127.0.0.1:7001" }]
  [frontend.health]
  check = "redis"
  password = { env = "PW" }
  password_file = "/etc/pw"
`,
		want: []string{
			`config.toml:8: frontend "demo": health.password: only applies to checks postgres, mysql and redis; got check "tcp"`,
			`config.toml:15: frontend "b": health.password: set password only; password_file and password_env are its deprecated spellings`,
		},
	},
	{
		name: "socket settings",
		toml: `[admin]
socket = "run/admin.sock"
socket_mode = "0460"
socket_roles = { "user:root" = "root", "gid:10" = "operator:nope", "uid:0" = "viewer:demo,demo" }
hosts = ["good.example", "bad:9090"]
` + demoFrontend,
		want: []string{
			`config.toml:2: admin.socket: must be an absolute path, got "run/admin.sock"`,
			`config.toml:3: admin.socket_mode: 0460 does not let the owner (splicer itself) use the socket; include 0600`,
			`config.toml:4: admin.socket_roles: gid:10: role is scoped to frontend "nope", which is not configured`,
			`config.toml:4: admin.socket_roles: uid:0: role "viewer:demo,demo" names frontend "demo" twice`,
			`config.toml:4: admin.socket_roles: user:root: role "root" is not one of viewer, operator, admin (optionally followed by :FRONTEND,...)`,
			`config.toml:5: admin.hosts: "bad:9090" is not a host name (letters, digits, - and ., no port)`,
		},
	},
	{
		name: "socket roles of the wrong shape",
		toml: "[admin]\nsocket = \"/run/a.sock\"\nsocket_roles = { \"login:bob\" = \"admin\" }\nsocket_mode = 0o1777\n" + demoFrontend,
		want: []string{
			`config.toml:3: admin.socket_roles: key "login:bob": must be "user:NAME", "uid:N", "group:NAME" or "gid:N"`,
			`config.toml:4: admin.socket_mode: must be permission bits between 0000 and 0777, got 01777`,
		},
	},
	{
		name: "admin files with the admin port disabled",
		toml: "[admin]\nlisten = \"\"\nusers_file = \"/etc/splicer/users\"\n" + demoFrontend,
		want: []string{`config.toml:3: admin.users_file: the admin port is disabled (listen and socket are empty), so this does nothing`},
	},
}

func TestParseAdminBadConfigs(t *testing.T) {
	for _, tc := range adminBadConfigs {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.toml), "config.toml")
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want problems:\n%s", cfg, strings.Join(tc.want, "\n"))
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestSecretNeverInProblems writes values that look like secrets in every
// place a secret could be mistyped: no problem text may repeat them.
func TestSecretNeverInProblems(t *testing.T) {
	const leak = "s3cr3t-VALUE"
	for _, text := range []string{
		"[admin]\naudit_log = \"/a\"\naudit_key = \"" + leak + "\"\n" + demoFrontend,
		"[admin]\naudit_log = \"/a\"\naudit_key = [\"" + leak + "\"]\n" + demoFrontend,
		demoFrontend + "health = { check = \"redis\", password = \"" + leak + "\" }\n",
		demoFrontend + "health = { check = \"redis\", password = { value = \"" + leak + "\" } }\n",
		"[admin]\nlisten = \"\"\nsocket = \"/s\"\ntls_cert = \"/c\"\ntls_key = \"" + leak + "\"\n" + demoFrontend,
	} {
		_, err := Parse([]byte(text), "config.toml")
		if err == nil {
			t.Fatalf("accepted:\n%s", text)
		}
		if strings.Contains(err.Error(), leak) {
			t.Errorf("problem repeats the secret:\n%v", err)
		}
	}
}

func TestDeprecatedPasswordKeys(t *testing.T) {
	cfg, err := Parse([]byte(demoFrontend+`  [frontend.health]
  check = "redis"
  password_file = "/etc/splicer/redis.pw"
[[frontend]]
name = "b"
listen = "127.0.0.1:7002"
backend = [{ address = "127.0.0.1:7001" }]
  [frontend.health]
  check = "redis"
  password_env = "REDIS_PW"
`), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := []Secret{cfg.Frontends[0].Health.Password, cfg.Frontends[1].Health.Password}; !reflect.DeepEqual(got,
		[]Secret{{File: "/etc/splicer/redis.pw"}, {Env: "REDIS_PW"}}) {
		t.Errorf("passwords %v", got)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		`config.toml:8: frontend "demo": health.password_file: deprecated: write password = { file = "/etc/splicer/redis.pw" }`,
		`config.toml:15: frontend "b": health.password_env: deprecated: write password = { env = "REDIS_PW" }`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAdminSettings(t *testing.T) {
	cfg, err := Parse([]byte(`[admin]
listen = "0.0.0.0:9443"
users_file = "/etc/splicer/users"
tls_cert = "/etc/splicer/admin.crt"
tls_key = { file = "/etc/splicer/admin.key" }
tls_client_ca = "/etc/splicer/ca.pem"
socket = "/run/splicer/admin.sock"
socket_mode = 0o600
[admin.socket_roles]
"user:root" = "admin"
"group:ops" = "operator:demo"
`+demoFrontend), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Admin
	want := Admin{
		Listen: "0.0.0.0:9443", UsersFile: "/etc/splicer/users",
		TLSCert: "/etc/splicer/admin.crt", TLSKey: Secret{File: "/etc/splicer/admin.key"},
		TLSClientCA: "/etc/splicer/ca.pem", TLSClientAuth: TLSClientOptional,
		Socket: "/run/splicer/admin.sock", SocketMode: 0o600,
		SocketRoles:  []SocketRole{{"group", "ops", "operator:demo"}, {"user", "root", "admin"}},
		AuditMaxSize: 64 << 20, AuditKeep: 10, MaxConnections: 64, MaxRequests: 16,
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("admin\n got %+v\nwant %+v", a, want)
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		in        string
		role      string
		frontends []string
		err       string
	}{
		{"viewer", "viewer", nil, ""},
		{"admin", "admin", nil, ""},
		{"operator:pg,redis", "operator", []string{"pg", "redis"}, ""},
		{"operator:", "", nil, `role "operator:": "" is not a frontend name`},
		{"root", "", nil, `role "root" is not one of viewer, operator, admin (optionally followed by :FRONTEND,...)`},
		{"Viewer", "", nil, `role "Viewer" is not one of viewer, operator, admin (optionally followed by :FRONTEND,...)`},
		{"viewer:a b", "", nil, `role "viewer:a b": "a b" is not a frontend name`},
	}
	for _, tc := range tests {
		role, fronts, err := ParseRole(tc.in)
		if role != tc.role || !reflect.DeepEqual(fronts, tc.frontends) || (err == nil) != (tc.err == "") ||
			err != nil && err.Error() != tc.err {
			t.Errorf("ParseRole(%q) = %q %v %v, want %q %v %q", tc.in, role, fronts, err, tc.role, tc.frontends, tc.err)
		}
	}
}

func TestBuilderSocketRoleMistake(t *testing.T) {
	_, err := New().AdminSocket("/run/a.sock").AdminSocketRole("login:bob", "admin").
		Frontend("x").Listen("127.0.0.1:1").Backend("127.0.0.1:2", 1).Build()
	var cerr *Error
	if !errors.As(err, &cerr) || err.Error() != `admin.socket_roles: key "login:bob": must be "user:NAME", "uid:N", "group:NAME" or "gid:N"` {
		t.Errorf("error %v", err)
	}
}
