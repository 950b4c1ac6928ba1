package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseDatabaseRoles: the role keys resolve, on_down defaults to close
// for frontends that route by role, and a Sentinel frontend has no backends
// of its own.
func TestParseDatabaseRoles(t *testing.T) {
	cfg, err := Parse([]byte(`
[[frontend]]
name = "pg-rw"
listen = "127.0.0.1:6432"
  [frontend.health]
  check = "postgres"
  role = "primary"
  password = { file = "/etc/splicer/pg.pass" }
  [[frontend.backend]]
  address = "10.0.0.11:5432"

[[frontend]]
name = "pg-ro"
listen = "127.0.0.1:6433"
on_down = "keep"
  [frontend.health]
  check = "postgres"
  role = "replica"
  max_lag = "10s"
  [[frontend.backend]]
  address = "10.0.0.12:5432"

[[frontend]]
name = "redis-ro"
listen = "127.0.0.1:6380"
  [frontend.health]
  check = "redis"
  role = "any"
  max_lag_bytes = "1MiB"
  password = { env = "REDIS_PW" }
  [[frontend.backend]]
  address = "10.0.0.21:6379"

[[frontend]]
name = "redis-rw"
listen = "127.0.0.1:6379"
discovery = { sentinel = ["10.0.0.31:26379", "10.0.0.32:26379"], master = "cache", password = { env = "SENTINEL_PW" } }
  [frontend.health]
  check = "redis"
  role = "primary"

[[frontend]]
name = "redis-replicas"
listen = "127.0.0.1:6381"
  [frontend.discovery]
  sentinel = "10.0.0.31:26379"
  master = "cache"
  role = "replica"
`), "roles.toml")
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		OnDown      string
		Role        string
		MaxLag      time.Duration
		MaxLagBytes int
		Password    string
		Backends    int
		Discovery   *Discovery
	}
	var got []view
	for _, f := range cfg.Frontends {
		got = append(got, view{f.OnDown, f.Health.Role, f.Health.MaxLag, f.Health.MaxLagBytes,
			f.Health.Password.File + f.Health.Password.Env, len(f.Backends), f.Discovery})
	}
	sentinels := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.31:26379"), netip.MustParseAddrPort("10.0.0.32:26379")}
	want := []view{
		{OnDownClose, RolePrimary, 0, 0, "/etc/splicer/pg.pass", 1, nil},
		{OnDownKeep, RoleReplica, 10 * time.Second, 0, "", 1, nil},
		{OnDownKeep, RoleAny, 0, 1 << 20, "REDIS_PW", 1, nil},
		{OnDownClose, RolePrimary, 0, 0, "", 0,
			&Discovery{Sentinel: sentinels, Master: "cache", Role: RolePrimary, Password: Secret{Env: "SENTINEL_PW"}}},
		{OnDownClose, "", 0, 0, "", 0,
			&Discovery{Sentinel: sentinels[:1], Master: "cache", Role: RoleReplica}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	// The Builder sets the same.
	built, err := New().
		Frontend("redis-rw").Listen("127.0.0.1:6379").
		DiscoverSentinel("cache", sentinels, DiscoveryOptions{Password: Secret{Env: "SENTINEL_PW"}}).
		HealthCheck(CheckRedis).HealthRole(RolePrimary).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	if f := built.Frontends[0]; !reflect.DeepEqual(f.Discovery, cfg.Frontends[3].Discovery) || f.OnDown != OnDownClose {
		t.Errorf("built discovery %+v, on_down %q; want %+v, close", f.Discovery, f.OnDown, cfg.Frontends[3].Discovery)
	}
}

// TestParseDatabaseProblems: each misuse of the role and discovery keys
// gets a message naming the key and the way out.
func TestParseDatabaseProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string // appended to demoFrontend, from line 6 on
		want []string
	}{
		{
			name: "role on an http check",
			toml: "[frontend.health]\ncheck = \"http\"\nrole = \"primary\"\n",
			want: []string{`config.toml:8: frontend "demo": health.role: only applies to checks postgres, mysql and redis; ` +
				`for Patroni's REST API use check "http" with path "/primary" or "/replica"`},
		},
		{
			name: "role on a tcp check",
			toml: "[frontend.health]\nrole = \"replica\"\n",
			want: []string{`config.toml:7: frontend "demo": health.role: only applies to checks postgres, mysql and redis; got check "tcp"`},
		},
		{
			name: "unknown role",
			toml: "[frontend.health]\ncheck = \"postgres\"\nrole = \"master\"\n",
			want: []string{`config.toml:8: frontend "demo": health.role: must be one of any, primary, replica; got "master"`},
		},
		{
			name: "lag without a role",
			toml: "[frontend.health]\ncheck = \"postgres\"\nmax_lag = \"5s\"\n",
			want: []string{`config.toml:8: frontend "demo": health.max_lag: needs health.role "replica" or "any"`},
		},
		{
			name: "lag on a primary",
			toml: "[frontend.health]\ncheck = \"redis\"\nrole = \"primary\"\nmax_lag_bytes = 1024\n",
			want: []string{`config.toml:9: frontend "demo": health.max_lag_bytes: a primary has no lag: needs health.role "replica" or "any"`},
		},
		{
			name: "lag in the wrong unit",
			toml: "[frontend.health]\ncheck = \"postgres\"\nrole = \"replica\"\nmax_lag_bytes = \"16MiB\"\n",
			want: []string{`config.toml:9: frontend "demo": health.max_lag_bytes: only applies to check redis; postgres measures replay lag in time: use max_lag`},
		},
		{
			name: "time lag on redis",
			toml: "[frontend.health]\ncheck = \"redis\"\nrole = \"replica\"\nmax_lag = \"1s\"\n",
			want: []string{`config.toml:9: frontend "demo": health.max_lag: only applies to check postgres; redis measures lag in bytes: use max_lag_bytes`},
		},
		{
			name: "lag on mysql",
			toml: "[frontend.health]\ncheck = \"mysql\"\nrole = \"any\"\nmax_lag = \"1s\"\n",
			want: []string{`config.toml:9: frontend "demo": health.max_lag: only applies to check postgres`},
		},
		{
			name: "negative lag",
			toml: "[frontend.health]\ncheck = \"postgres\"\nrole = \"replica\"\nmax_lag = \"-1s\"\n",
			want: []string{`config.toml:9: frontend "demo": health.max_lag: must not be negative, got -1s`},
		},
		{
			name: "password for a check that sends none",
			toml: "[frontend.health]\ncheck = \"http\"\npassword = { env = \"PW\" }\n",
			want: []string{`config.toml:8: frontend "demo": health.password: only applies to checks postgres, mysql and redis; got check "http"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(demoFrontend+tc.toml), "config.toml")
			if err == nil {
				t.Fatalf("Parse succeeded, want:\n%s", strings.Join(tc.want, "\n"))
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestParseDiscoveryProblems: a Sentinel frontend must be TCP, have no
// backends of its own and name its Sentinels and master.
func TestParseDiscoveryProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string
		want []string
	}{
		{
			name: "backends beside discovery",
			toml: `
[[frontend]]
name = "r"
listen = "127.0.0.1:6379"
discovery = { sentinel = "127.0.0.1:26379", master = "m" }
  [[frontend.backend]]
  address = "127.0.0.1:6380"
`,
			want: []string{`config.toml:6: frontend "r": backend[0]: the backends come from discovery: remove the [[frontend.backend]] tables`},
		},
		{
			name: "incomplete discovery",
			toml: `
[[frontend]]
name = "r"
listen = "127.0.0.1:6379"
  [frontend.discovery]
  role = "master"
`,
			want: []string{
				`config.toml:5: frontend "r": discovery.sentinel: required: at least one Sentinel IP:port, such as "10.0.0.21:26379"`,
				`config.toml:5: frontend "r": discovery.master: required: the name of the master set the Sentinels monitor`,
				`config.toml:6: frontend "r": discovery.role: must be one of primary, replica; got "master"`,
			},
		},
		{
			name: "bad sentinel addresses",
			toml: `
[[frontend]]
name = "r"
listen = "127.0.0.1:6379"
  [frontend.discovery]
  sentinel = ["sentinel-1:26379", "127.0.0.1:26379", "127.0.0.1:26379", "0.0.0.0:26379"]
  master = "m"
`,
			want: []string{
				`config.toml:6: frontend "r": discovery.sentinel: "sentinel-1:26379": "sentinel-1" is not an IP address; IP literals are required, hostnames are not resolved`,
				`config.toml:6: frontend "r": discovery.sentinel: 127.0.0.1:26379 is listed twice`,
				`config.toml:6: frontend "r": discovery.sentinel: 0.0.0.0:26379 is not a destination; give the Sentinel's own IP and port`,
			},
		},
		{
			name: "discovery on udp",
			toml: `
[[frontend]]
name = "r"
protocol = "udp"
listen = "127.0.0.1:6379"
discovery = { sentinel = "127.0.0.1:26379", master = "m" }
`,
			want: []string{`config.toml:6: frontend "r": discovery: only applies to tcp frontends`},
		},
		{
			name: "unknown discovery key",
			toml: `
[[frontend]]
name = "r"
listen = "127.0.0.1:6379"
  [frontend.discovery]
  sentinel = "127.0.0.1:26379"
  master = "m"
  mastr = "n"
`,
			want: []string{`config.toml:8: frontend[0].discovery: unknown key "mastr" (did you mean "master"?)`},
		},
	} {
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
