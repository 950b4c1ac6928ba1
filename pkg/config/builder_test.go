package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// richTOML sets most keys, across several frontends, to values other than
// their defaults.
const richTOML = `
[global]
workers = 3
max_connections = 20000
max_pipes = 64
pipe_size = "256KiB"
buffer_size = "32KiB"
shutdown_timeout = "10s"

[log]
level = "debug"
format = "console"

[admin]
listen = "[::1]:9191"
hosts = ["lb1.example.net"]
users_file = "/etc/splicer/users"
socket = "/run/splicer/admin.sock"
socket_mode = "0600"
socket_group = "splicer"
socket_roles = { "user:root" = "admin", "gid:1001" = "operator:pg,redis" }
tls_cert = "/etc/splicer/admin.crt"
tls_key = { credential = "admin-tls-key" }
tls_client_ca = "/etc/splicer/clients.pem"
tls_client_auth = "require"
audit_log = "/var/lib/splicer/audit.log"
audit_key = { file = "/etc/splicer/audit.key" }
audit_max_size = "8MiB"
audit_keep = 3
max_connections = 32
max_requests = 8

[[frontend]]
name = "pg"
listen = ["0.0.0.0:6432", "[::]:6432"]
strategy = "leastconn"
max_connections = 5000
max_queue = 100
queue_timeout = "1s"
connect_timeout = "500ms"
idle_timeout = "2h"
half_close_timeout = "30s"
retries = 3
tcp_keepalive = false
keepalive_idle = "30s"
keepalive_interval = "5s"
keepalive_count = 4
allow = ["10.0.0.0/8", "fd00::/8"]
deny = ["10.66.0.0/16"]
max_connections_per_client = 50
connection_rate_per_client = 20
slow_start = "30s"
on_down = "close"

  [frontend.health]
  check = "postgres"
  interval = "3s"
  timeout = "2s"
  fast_interval = "1s"
  down_interval = "10s"
  rise = 3
  fall = 2
  passive_fall = 0
  port = 5433
  user = "probe"
  database = "postgres"

  [[frontend.backend]]
  name = "pg-a"
  address = "10.0.0.11:5432"
  weight = 100
  max_connections = 500

  [[frontend.backend]]
  address = "10.0.0.12:5432"
  weight = 50

  [[frontend.backend]]
  address = "10.0.0.13:5432"
  backup = true

[[frontend]]
name = "redis"
listen = "127.0.0.1:6379"
strategy = "maglev"
maglev_table_size = 251

  [frontend.health]
  check = "redis"
  password = { env = "REDIS_PASSWORD" }

  [[frontend.backend]]
  address = "[fd00::1]:6379"

[[frontend]]
name = "dns"
protocol = "udp"
listen = "127.0.0.1:5353"
strategy = "p2c"
idle_timeout = "5s"
responses = 1
max_flows = 50000

  [frontend.health]
  check = "http"
  port = 8080
  path = "/healthz"
  status = 204
  send_hex = "0d0a"

  [[frontend.backend]]
  address = "127.0.0.1:53"
`

// richBuilder sets the same values as richTOML.
func richBuilder() *Builder {
	b := New().Workers(3).MaxConnections(20000).MaxPipes(64).
		PipeSize(256<<10).BufferSize(32<<10).ShutdownTimeout(10*time.Second).
		LogLevel("debug").LogFormat("console").
		AdminListen("[::1]:9191").AdminHosts("lb1.example.net").AdminUsersFile("/etc/splicer/users").
		AdminSocket("/run/splicer/admin.sock").AdminSocketMode(0o600).AdminSocketGroup("splicer").
		AdminSocketRole("user:root", "admin").AdminSocketRole("gid:1001", "operator:pg,redis").
		AdminTLS("/etc/splicer/admin.crt", Secret{Credential: "admin-tls-key"}).
		AdminTLSClientCA("/etc/splicer/clients.pem", TLSClientRequire).
		AdminAuditLog("/var/lib/splicer/audit.log", Secret{File: "/etc/splicer/audit.key"}).
		AdminAuditRotation(8<<20, 3).AdminLimits(32, 8)
	b.Frontend("pg").Listen("0.0.0.0:6432", "[::]:6432").Strategy(StrategyLeastConn).
		MaxConnections(5000).MaxQueue(100).QueueTimeout(time.Second).
		ConnectTimeout(500*time.Millisecond).IdleTimeout(2*time.Hour).HalfCloseTimeout(30*time.Second).Retries(3).
		TCPKeepalive(false).KeepaliveIdle(30*time.Second).KeepaliveInterval(5*time.Second).KeepaliveCount(4).
		Allow("10.0.0.0/8").Allow("fd00::/8").Deny("10.66.0.0/16").
		MaxConnectionsPerClient(50).ConnectionRatePerClient(20).
		SlowStart(30*time.Second).OnDown(OnDownClose).
		HealthCheck(CheckPostgres).HealthInterval(3*time.Second).HealthTimeout(2*time.Second).
		HealthFastInterval(time.Second).HealthDownInterval(10*time.Second).
		HealthRise(3).HealthFall(2).HealthPassiveFall(0).HealthPort(5433).
		HealthUser("probe").HealthDatabase("postgres").
		Backend("10.0.0.11:5432", 100).BackendOpts(BackendOptions{Name: "pg-a", MaxConnections: 500}).
		Backend("10.0.0.12:5432", 50).
		Backend("10.0.0.13:5432", 1).BackendOpts(BackendOptions{Backup: true}).
		Frontend("redis").Listen("127.0.0.1:6379").Strategy(StrategyMaglev).MaglevTableSize(251).
		HealthCheck(CheckRedis).HealthPassword(Secret{Env: "REDIS_PASSWORD"}).
		Backend("[fd00::1]:6379", 1).
		Frontend("dns").Protocol(ProtocolUDP).Listen("127.0.0.1:5353").Strategy(StrategyP2C).
		IdleTimeout(5*time.Second).Responses(1).MaxFlows(50000).
		HealthCheck(CheckHTTP).HealthPort(8080).HealthPath("/healthz").HealthStatus(204).HealthSendHex("0d0a").
		Backend("127.0.0.1:53", 1)
	return b
}

func TestBuilderMatchesTOML(t *testing.T) {
	fromTOML, err := Parse([]byte(richTOML), "rich.toml")
	if err != nil {
		t.Fatal(err)
	}
	fromTOML.File = ""
	// The same warnings, located only in the file.
	for i := range fromTOML.Warnings {
		fromTOML.Warnings[i].File, fromTOML.Warnings[i].Line = "", 0
	}
	built, err := richBuilder().Build()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(built, fromTOML) {
		t.Errorf("Builder and TOML differ:\nbuilder %+v\n   toml %+v", built, fromTOML)
	}
	// Spot-check that the rich config is not mostly defaults.
	pg := built.Frontends[0]
	if pg.Health.PassiveFall != 0 || pg.TCPKeepalive || pg.Backends[0].Name != "pg-a" || !pg.Backends[2].Backup {
		t.Errorf("explicit zero and false values lost: %+v", pg)
	}
}

func TestBuilderBuildsTwice(t *testing.T) {
	b := richBuilder()
	first, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("second Build differs:\n%+v\n%+v", first, second)
	}
}

func TestBuilderProblems(t *testing.T) {
	tests := []struct {
		name  string
		build func() (*Config, error)
		want  []string
	}{
		{
			name:  "nothing set",
			build: New().Build,
			want:  []string{`frontend: at least one [[frontend]] is required`},
		},
		{
			name: "bad addresses are reported by Build",
			build: New().AdminListen("localhost:1").
				Frontend("x").Listen("localhost:80").Backend("10.0.0.1", 1).
				Build,
			want: []string{
				`admin.listen: "localhost:1": "localhost" is not an IP address; IP literals are required, hostnames are not resolved`,
				`frontend "x": listen: "localhost:80": "localhost" is not an IP address; IP literals are required, hostnames are not resolved`,
				`frontend "x": backend[0].address: "10.0.0.1" has no port; write IP:port, with IPv6 in brackets, such as "[::1]:7000"`,
			},
		},
		{
			name: "BackendOpts before Backend",
			build: New().Frontend("x").Listen("127.0.0.1:1").
				BackendOpts(BackendOptions{Backup: true}).Backend("127.0.0.1:2", 1).
				Build,
			want: []string{`frontend "x": backend: BackendOpts called before any Backend`},
		},
		{
			name: "explicit values follow the same rules as in a file",
			build: New().Frontend("").Protocol(ProtocolUDP).Listen("127.0.0.1:1").Retries(2).
				HealthRise(0).Backend("127.0.0.1:2", 0).
				Build,
			want: []string{
				`frontend[0]: name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -, got ""`,
				`frontend[0]: retries: only applies to tcp frontends`,
				`frontend[0]: health.rise: must be between 1 and 100, got 0`,
				`frontend[0]: backend[0].weight: must be between 1 and 256, got 0`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.build()
			if err == nil {
				t.Fatalf("Build succeeded with %+v", cfg)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
