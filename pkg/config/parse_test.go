package config

import (
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

const examplePath = "../../config.toml.example"

// defaultFrontend is what a [[frontend]] with only a name, a listen address
// and one backend resolves to.
func defaultFrontend() Frontend {
	return Frontend{
		Name:               "demo",
		Listen:             []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7000")},
		Protocol:           ProtocolTCP,
		Strategy:           StrategyRoundRobin,
		MaglevTableSize:    65537,
		MaxQueue:           1024,
		QueueTimeout:       3 * time.Second,
		ConnectTimeout:     2 * time.Second,
		IdleTimeout:        time.Hour,
		HalfCloseTimeout:   time.Minute,
		Retries:            2,
		TCPKeepalive:       true,
		KeepaliveIdle:      time.Minute,
		KeepaliveInterval:  10 * time.Second,
		KeepaliveCount:     6,
		OnDown:             OnDownKeep,
		SendProxy:          ProxyNone,
		ProxyHeaderTimeout: 5 * time.Second,
		LogConnections:     LogErrors,
		LogSample:          1,
		Responses:          -1,
		MaxFlows:           10000,
		Health: Health{
			Check:        CheckTCP,
			Interval:     2 * time.Second,
			Timeout:      time.Second,
			FastInterval: 2 * time.Second,
			DownInterval: 2 * time.Second,
			Rise:         2,
			Fall:         3,
			PassiveFall:  5,
			User:         "splicer",
			Database:     "splicer",
			Path:         "/",
			Status:       200,
		},
		Backends: []Backend{{
			Name:      "127.0.0.1:7001",
			Address:   netip.MustParseAddrPort("127.0.0.1:7001"),
			Weight:    1,
			SendProxy: ProxyNone,
		}},
	}
}

func TestParseDefaults(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("RUNTIME_DIRECTORY", "")
	cfg, err := Parse([]byte(`
[[frontend]]
name = "demo"
listen = "127.0.0.1:7000"
[[frontend.backend]]
address = "127.0.0.1:7001"
`), "minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File: "minimal.toml",
		Global: Global{
			Workers:         runtime.NumCPU(),
			MaxConnections:  10000,
			MaxPipes:        1024,
			PipeSize:        1 << 20,
			BufferSize:      64 << 10,
			ShutdownTimeout: 30 * time.Second,
			RuntimeDir:      defaultRuntimeDir(),
		},
		Log: Log{Level: "info", Format: "json", ConnectionsBuffer: 1024},
		Admin: Admin{Listen: "127.0.0.1:9090", SocketMode: 0o660, AuditMaxSize: 64 << 20, AuditKeep: 10,
			MaxConnections: 64, MaxRequests: 16},
		Upgrade:   Upgrade{Handoff: true, HandoffTimeout: 10 * time.Second},
		DNS:       DNS{Timeout: time.Second, Interval: 5 * time.Second, MinInterval: time.Second, MaxInterval: 30 * time.Second},
		Frontends: []Frontend{defaultFrontend()},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestParseDerivedDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
[admin]
listen = ""

[[frontend]]
name = "dns"
protocol = "udp"
listen = "[::1]:5353"
  [frontend.health]
  interval = "5s"
  fast_interval = "1s"
  user = "probe"
  [[frontend.backend]]
  address = "[::1]:53"
`), "udp.toml")
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Frontends[0]
	got := []any{cfg.Admin.Listen, f.Listen, f.IdleTimeout, f.Health.Check, f.Health.FastInterval, f.Health.DownInterval, f.Health.Database, f.Backends[0].Name}
	want := []any{"", []netip.AddrPort{netip.MustParseAddrPort("[::1]:5353")}, 30 * time.Second, CheckNone, time.Second, 5 * time.Second, "probe", "[::1]:53"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("admin listen, listen, idle_timeout, health.check, fast_interval, down_interval, database, backend name = %v, want %v", got, want)
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name string
		toml string // keys of a [[frontend]] named "demo" with one backend
		edit func(*Config)
	}{
		{
			name: "listen as a list",
			toml: `listen = ["127.0.0.1:7000", "[::1]:7000", "0.0.0.0:0", "127.0.0.1:0"]`,
			edit: func(c *Config) {
				c.Frontends[0].Listen = []netip.AddrPort{
					netip.MustParseAddrPort("127.0.0.1:7000"), netip.MustParseAddrPort("[::1]:7000"),
					netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("127.0.0.1:0"),
				}
			},
		},
		{
			name: "listen as a one-element list",
			toml: `listen = ["127.0.0.1:7000"]`,
			edit: func(*Config) {},
		},
		{
			name: "IPv6 listen",
			toml: `listen = "[::]:7000"`,
			edit: func(c *Config) { c.Frontends[0].Listen = []netip.AddrPort{netip.MustParseAddrPort("[::]:7000")} },
		},
		{
			name: "allow and deny with bare IPs",
			toml: "listen = \"127.0.0.1:7000\"\nallow = [\"10.0.0.0/8\", \"192.168.1.10\", \"::1\"]\ndeny = \"10.9.0.0/16\"",
			edit: func(c *Config) {
				c.Frontends[0].Allow = []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.10/32"), netip.MustParsePrefix("::1/128"),
				}
				c.Frontends[0].Deny = []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}
			},
		},
		{
			name: "sizes in decimal units and in bytes",
			toml: "listen = \"127.0.0.1:7000\"\n[global]\npipe_size = \"2MB\"\nbuffer_size = 8192",
			edit: func(c *Config) {
				c.Global.PipeSize = 2_000_000
				c.Global.BufferSize = 8192
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := "[[frontend]]\nname = \"demo\"\nbackend = [{ address = \"127.0.0.1:7001\" }]\n" + tc.toml + "\n"
			got, err := Parse([]byte(text), "")
			if err != nil {
				t.Fatal(err)
			}
			want, err := New().Frontend("demo").Listen("127.0.0.1:7000").Backend("127.0.0.1:7001", 1).Build()
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestExampleConfig(t *testing.T) {
	got, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := New().
		MaxConnections(5000).ShutdownTimeout(30*time.Second).
		LogLevel("info").LogFormat("console").
		AdminListen("127.0.0.1:9090").
		Frontend("demo").Listen("127.0.0.1:7000").Protocol(ProtocolTCP).Strategy(StrategyRoundRobin).
		ConnectTimeout(2*time.Second).LogConnections(LogAll).
		HealthCheck(CheckTCP).HealthInterval(2*time.Second).HealthRise(2).HealthFall(3).
		Backend("127.0.0.1:7001", 2).
		Backend("127.0.0.1:7002", 1).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	want.File = examplePath
	if !reflect.DeepEqual(got, want) {
		t.Errorf("example:\n got %+v\nwant %+v", got, want)
	}
}

// TestExampleCommentedFrontends checks that the example's commented-out
// frontends are valid once uncommented.
func TestExampleCommentedFrontends(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`(?m)^# ( *(\[|[a-z_]+ = ))`)
	text := setting.ReplaceAllString(string(data), "$1")
	cfg, err := Parse([]byte(text), "uncommented")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range cfg.Frontends {
		names = append(names, f.Name+"/"+f.Protocol+"/"+f.Strategy+"/"+f.Health.Check)
	}
	if got, want := strings.Join(names, " "), "demo/tcp/roundrobin/tcp pg/tcp/leastconn/postgres web/tcp/roundrobin/tcp cache/tcp/roundrobin/redis pg-consul/tcp/maglev/tcp pg-hosts/tcp/roundrobin/tcp dns/udp/roundrobin/send_expect"; got != want {
		t.Errorf("frontends %q, want %q", got, want)
	}
}

func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, examplePath); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseUDPReceiveBuffer(t *testing.T) {
	cfg, err := Parse([]byte(`
[[frontend]]
name = "dns"
protocol = "udp"
listen = "127.0.0.1:5353"
receive_buffer = "8MiB"
  [[frontend.backend]]
  address = "127.0.0.1:53"
`), "udp.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Frontends[0].ReceiveBuffer; got != 8<<20 {
		t.Errorf("receive_buffer = %d, want %d", got, 8<<20)
	}
}
