package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// refusals are configs each refused with the exact problems an operator
// reads: the file, the line, the key and what is wrong with its value.
var refusals = []struct {
	name string
	toml string
	want []string
}{
	{
		name: "socket_mode out of range",
		toml: "[admin]\nsocket = \"/run/a.sock\"\nsocket_mode = -1\n" + demoFrontend,
		want: []string{
			`config.toml:3: admin.socket_mode: must be permission bits such as 0o660 or "0660", got -1`,
		},
	},
	{
		name: "socket_mode not octal",
		toml: "[admin]\nsocket = \"/run/a.sock\"\nsocket_mode = \"0999\"\n" + demoFrontend,
		want: []string{
			`config.toml:3: admin.socket_mode: "0999" is not octal permission bits such as "0660"`,
		},
	},
	{
		name: "socket_mode of the wrong type",
		toml: "[admin]\nsocket = \"/run/a.sock\"\nsocket_mode = true\n" + demoFrontend,
		want: []string{
			`config.toml:3: admin.socket_mode: must be permission bits such as 0o660 or "0660", got a boolean`,
		},
	},
	{
		name: "socket_roles not a table",
		toml: "[admin]\nsocket = \"/run/a.sock\"\nsocket_roles = \"admin\"\n" + demoFrontend,
		want: []string{
			`config.toml:3: admin.socket_roles: must be a table such as { "user:root" = "admin", "group:splicer-ops" = "operator" }, got a string`,
		},
	},
	{
		name: "socket_roles user without a name",
		toml: "[admin]\nsocket = \"/run/a.sock\"\nsocket_roles = { \"user:\" = \"admin\" }\n" + demoFrontend,
		want: []string{
			`config.toml:3: admin.socket_roles: key "user:": name the user after the colon`,
		},
	},
	{
		name: "socket_roles uid not a number",
		toml: "[admin]\nsocket = \"/run/a.sock\"\nsocket_roles = { \"uid:root\" = \"admin\" }\n" + demoFrontend,
		want: []string{
			`config.toml:3: admin.socket_roles: key "uid:root": "root" is not a number`,
		},
	},
	{
		name: "socket_roles role not a string",
		toml: "[admin]\nsocket = \"/run/a.sock\"\nsocket_roles = { \"gid:0\" = 1 }\n" + demoFrontend,
		want: []string{
			`config.toml:3: admin.socket_roles: key "gid:0": the role must be a string, got an integer`,
		},
	},
	{
		name: "admin hosts of bad labels",
		toml: "[admin]\nhosts = [\"\", \"a..b\", \"-a.example\", \"" + strings.Repeat("a", 64) + ".example\"]\n" + demoFrontend,
		want: []string{
			`config.toml:2: admin.hosts: "" is not a host name (letters, digits, - and ., no port)`,
			`config.toml:2: admin.hosts: "a..b" is not a host name (letters, digits, - and ., no port)`,
			`config.toml:2: admin.hosts: "-a.example" is not a host name (letters, digits, - and ., no port)`,
			`config.toml:2: admin.hosts: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example" is not a host name (letters, digits, - and ., no port)`,
		},
	},
	{
		name: "a date-time where a string goes",
		toml: "[log]\nlevel = 2026-12-05T10:00:00Z\n" + demoFrontend,
		want: []string{
			`config.toml:2: log.level: must be a string, got a date-time`,
		},
	},
	{
		name: "too many resolvers",
		toml: "[dns]\nresolvers = [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\", \"127.0.0.1:4\", \"127.0.0.1:5\", \"127.0.0.1:6\", \"127.0.0.1:7\", \"127.0.0.1:8\", \"127.0.0.1:9\"]\n" + demoFrontend,
		want: []string{
			`config.toml:2: dns.resolvers: at most 8 resolvers, got 9`,
		},
	},
	{
		name: "lag bytes without a role",
		toml: demoFrontend + "[frontend.health]\ncheck = \"redis\"\nmax_lag_bytes = 1024\n",
		want: []string{
			`config.toml:8: frontend "demo": health.max_lag_bytes: needs health.role "replica" or "any"`,
		},
	},
	{
		name: "negative lag bytes",
		toml: demoFrontend + "[frontend.health]\ncheck = \"redis\"\nrole = \"replica\"\nmax_lag_bytes = -1\n",
		want: []string{
			`config.toml:9: frontend "demo": health.max_lag_bytes: must not be negative, got -1`,
		},
	},
	{
		name: "time lag on a primary",
		toml: demoFrontend + "[frontend.health]\ncheck = \"postgres\"\nrole = \"primary\"\nmax_lag = \"1s\"\n",
		want: []string{
			`config.toml:9: frontend "demo": health.max_lag: a primary has no lag: needs health.role "replica" or "any"`,
		},
	},
	{
		name: "handoff_timeout not positive",
		toml: "[upgrade]\nhandoff_timeout = \"0s\"\n" + demoFrontend,
		want: []string{
			`config.toml:2: upgrade.handoff_timeout: must be positive, got 0s`,
		},
	},
	{
		name: "listen addresses of one frontend overlap",
		toml: "[[frontend]]\nname = \"demo\"\nlisten = [\"0.0.0.0:7000\", \"127.0.0.1:7000\"]\nbackend = [{ address = \"127.0.0.1:7001\" }]\n",
		want: []string{
			`config.toml:3: frontend "demo": listen: 127.0.0.1:7000 conflicts with 0.0.0.0:7000 of the same frontend`,
		},
	},
	{
		name: "empty secret file",
		toml: demoFrontend + "[frontend.health]\ncheck = \"redis\"\npassword = { file = \"\" }\n",
		want: []string{
			`config.toml:8: frontend "demo": health.password: file: must be a non-empty string`,
		},
	},
	{
		name: "credential with a slash",
		toml: demoFrontend + "[frontend.health]\ncheck = \"redis\"\npassword = { credential = \"../etc/shadow\" }\n",
		want: []string{
			`config.toml:8: frontend "demo": health.password: credential: "../etc/shadow" is not a credential name (no /)`,
		},
	},
	{
		name: "backend host names that are not",
		toml: "[[frontend]]\nname = \"demo\"\nlisten = \"127.0.0.1:7000\"\nbackend = [{ address = \"db:5432:1\" }, { address = \".:5432\" }, { address = \"[1.2.3.4]:80\" }]\n",
		want: []string{
			`config.toml:4: frontend "demo": backend[0].address: "db:5432:1" is not IP:port, such as "127.0.0.1:7000" or "[::1]:7000"`,
			`config.toml:4: frontend "demo": backend[1].address: ".:5432": "." is not a DNS name: 1 to 253 characters`,
			`config.toml:4: frontend "demo": backend[2].address: "[1.2.3.4]:80" is not IP:port, such as "127.0.0.1:7000" or "[::1]:7000"`,
		},
	},
	{
		name: "a table given as a string",
		toml: "admin = \"127.0.0.1:9090\"\n" + demoFrontend,
		want: []string{
			`config.toml:1: admin: must be a table ([admin]), got a string`,
		},
	},
	{
		name: "maglev table of one slot",
		toml: demoFrontend + "strategy = \"maglev\"\nmaglev_table_size = 1\n",
		want: []string{
			`config.toml:7: frontend "demo": maglev_table_size: must be a prime between 2 and 1048573, got 1`,
		},
	},
	{
		name: "a comment on the last line",
		toml: demoFrontend + "retries = -1 # no newline after this",
		want: []string{
			`config.toml:6: frontend "demo": retries: must be between 0 and 10, got -1`,
		},
	},
}

func TestParseRefusals(t *testing.T) {
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml), "config.toml")
			if err == nil {
				t.Fatalf("Parse succeeded, want:\n%s", strings.Join(tc.want, "\n"))
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestBuilderRoleChecksMatchTOML: the builder's role-check and regexp
// settings give the config the same keys written in a file give.
func TestBuilderRoleChecksMatchTOML(t *testing.T) {
	const text = `
[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"
backend = [{ address = "127.0.0.1:5432" }]
health = { check = "postgres", role = "replica", max_lag = "5s" }

[[frontend]]
name = "redis"
listen = "127.0.0.1:6379"
discovery = { sentinel = "127.0.0.1:26379", master = "m", role = "replica" }
health = { check = "redis", role = "replica", max_lag_bytes = "1MiB" }

[[frontend]]
name = "ping"
listen = "127.0.0.1:7000"
backend = [{ address = "127.0.0.1:7001" }]
health = { check = "send_expect", send = "PING\r\n", expect_regex = "^\\+PONG" }
`
	fromTOML, err := Parse([]byte(text), "")
	if err != nil {
		t.Fatal(err)
	}
	built, err := New().
		Frontend("pg").Listen("127.0.0.1:6432").Backend("127.0.0.1:5432", 1).
		HealthCheck(CheckPostgres).HealthRole(RoleReplica).HealthMaxLag(5*time.Second).
		Frontend("redis").Listen("127.0.0.1:6379").
		DiscoverSentinel("m", []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:26379")}, DiscoveryOptions{Role: RoleReplica}).
		HealthCheck(CheckRedis).HealthRole(RoleReplica).HealthMaxLagBytes(1<<20).
		Frontend("ping").Listen("127.0.0.1:7000").Backend("127.0.0.1:7001", 1).
		HealthCheck(CheckSendExpect).HealthSend("PING\r\n").HealthExpectRegex(`^\+PONG`).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(built, fromTOML) {
		t.Errorf("Builder and TOML differ:\nbuilder %+v\n   toml %+v", built, fromTOML)
	}
	if h := built.Frontends[1].Health; h.MaxLagBytes != 1<<20 || built.Frontends[0].Health.MaxLag != 5*time.Second ||
		built.Frontends[2].Health.ExpectRegex != `^\+PONG` || built.Frontends[1].Discovery.Role != RoleReplica {
		t.Errorf("settings lost: %+v", built.Frontends)
	}
}

// TestParseWithoutFileName: a config parsed from memory, without a file
// name, still says the line of each problem.
func TestParseWithoutFileName(t *testing.T) {
	_, err := Parse([]byte(demoFrontend+"retries = 11\n"), "")
	if want := `line 6: frontend "demo": retries: must be between 0 and 10, got 11`; err == nil || err.Error() != want {
		t.Fatalf("Parse = %v, want %q", err, want)
	}
}

// TestLoadInMissingFile: LoadIn, as the daemon calls it, says which file it
// could not read.
func TestLoadInMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.toml")
	_, err := LoadIn(path, Environment{})
	if want := "load config: open " + path + ": no such file or directory"; err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadIn = %v, want %q", err, want)
	}
}

// TestSecretFileOfAnotherUser: a secret file owned by a user other than
// this process's and root is refused, whatever its mode: its owner could
// change it.
func TestSecretFileOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "pw"), "s3cret\n", 0o600)
	if err := os.Chown(path, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	_, err := ReadSecretFile(path)
	want := `file "` + path + `": owned by uid 12345, neither this process's user (uid 0) nor root; its owner could change it`
	if err == nil || err.Error() != want {
		t.Fatalf("ReadSecretFile = %v\nwant %q", err, want)
	}
}
