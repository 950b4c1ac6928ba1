package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseDNS: [dns] sets the defaults of every DNS discovery table, a
// table overrides them key by key, host-name backends keep their host and
// port, and DNS discovery drains removed backends by default (on_down
// "keep"), unlike Sentinel.
func TestParseDNS(t *testing.T) {
	cfg, err := Parse([]byte(`
[dns]
resolvers = ["127.0.0.1:8600", "[::1]:53"]
timeout = "500ms"
max_interval = "1m"

[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"
strategy = "maglev"
  [frontend.discovery]
  type = "srv"
  name = "_pg._tcp.db.service.consul"
  interval = "2s"
  min_interval = "3s"

[[frontend]]
name = "web"
listen = "127.0.0.1:8080"
discovery = { type = "a", name = "web.internal.", port = 80, resolvers = "10.0.0.2:53" }

[[frontend]]
name = "mixed"
listen = "127.0.0.1:9000"
  [[frontend.backend]]
  address = "10.0.0.7:9000"
  [[frontend.backend]]
  address = "DB1.Internal:9000"
  weight = 3
  [[frontend.backend]]
  name = "db2"
  address = "db2.internal:9001"
  backup = true
`), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	resolvers := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8600"), netip.MustParseAddrPort("[::1]:53")}
	if want := (DNS{Resolvers: resolvers, Timeout: 500 * time.Millisecond, Interval: 5 * time.Second,
		MinInterval: time.Second, MaxInterval: time.Minute}); !reflect.DeepEqual(cfg.DNS, want) {
		t.Errorf("[dns] %+v, want %+v", cfg.DNS, want)
	}
	pg := cfg.Frontends[0]
	if want := (&Discovery{Type: DiscoverySRV, Name: "_pg._tcp.db.service.consul", DNS: DNS{Resolvers: resolvers,
		Timeout: 500 * time.Millisecond, Interval: 2 * time.Second, MinInterval: 3 * time.Second, MaxInterval: time.Minute}}); !reflect.DeepEqual(pg.Discovery, want) {
		t.Errorf("pg discovery %+v, want %+v", pg.Discovery, want)
	}
	if pg.OnDown != OnDownKeep || len(pg.Backends) != 0 {
		t.Errorf("pg: on_down %q, backends %v; want keep and none", pg.OnDown, pg.Backends)
	}
	web := cfg.Frontends[1].Discovery
	if web.Type != DiscoveryA || web.Name != "web.internal." || web.Port != 80 ||
		!reflect.DeepEqual(web.DNS.Resolvers, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:53")}) {
		t.Errorf("web discovery %+v", web)
	}
	want := []Backend{
		{Name: "10.0.0.7:9000", Address: netip.MustParseAddrPort("10.0.0.7:9000"), Weight: 1, SendProxy: ProxyNone},
		{Name: "db1.internal:9000", Host: "db1.internal", Address: netip.AddrPortFrom(netip.Addr{}, 9000), Weight: 3, SendProxy: ProxyNone},
		{Name: "db2", Host: "db2.internal", Address: netip.AddrPortFrom(netip.Addr{}, 9001), Weight: 1, Backup: true, SendProxy: ProxyNone},
	}
	if got := cfg.Frontends[2].Backends; !reflect.DeepEqual(got, want) {
		t.Errorf("backends\n got %+v\nwant %+v", got, want)
	}
}

func TestParseBadDNS(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string
		want []string
	}{
		{
			name: "bad [dns]",
			toml: `
[dns]
resolvers = ["resolver:53", "127.0.0.1:53", "127.0.0.1:53", "0.0.0.0:53"]
timeout = "1ms"
min_interval = "10s"
max_interval = "5s"

[[frontend]]
name = "f"
listen = "127.0.0.1:7000"
  [[frontend.backend]]
  address = "127.0.0.1:7001"
`,
			want: []string{
				`config.toml:3: dns.resolvers: "resolver:53": "resolver" is not an IP address; IP literals are required, hostnames are not resolved`,
				`config.toml:3: dns.resolvers: 127.0.0.1:53 is listed twice`,
				`config.toml:3: dns.resolvers: 0.0.0.0:53 is not a destination; give the resolver's own IP and port, such as "127.0.0.53:53"`,
				`config.toml:4: dns.timeout: must be between 100ms and 30s, got 1ms`,
				`config.toml:5: dns.min_interval: 10s is above max_interval 5s`,
			},
		},
		{
			name: "incomplete dns discovery",
			toml: `
[[frontend]]
name = "f"
listen = "127.0.0.1:7000"
  [frontend.discovery]
  type = "mx"
`,
			want: []string{
				`config.toml:5: frontend "f": discovery.name: required: the DNS name to look up, such as "_pg._tcp.db.service.consul"`,
				`config.toml:5: frontend "f": discovery.port: required with type "mx": the port to connect to on the addresses found`,
				`config.toml:6: frontend "f": discovery.type: must be one of srv, a, aaaa; got "mx"`,
			},
		},
		{
			name: "keys of the other source",
			toml: `
[[frontend]]
name = "f"
listen = "127.0.0.1:7000"
  [frontend.discovery]
  type = "srv"
  name = "_x._tcp.example"
  port = 80
  master = "m"

[[frontend]]
name = "g"
listen = "127.0.0.1:7001"
  [frontend.discovery]
  sentinel = "127.0.0.1:26379"
  master = "m"
  interval = "1s"
`,
			want: []string{
				`config.toml:8: frontend "f": discovery.port: SRV records carry their port: remove it`,
				`config.toml:9: frontend "f": discovery.master: only applies to Redis Sentinel discovery, which has no type; this one has type "srv"`,
				`config.toml:17: frontend "g": discovery.interval: only applies to DNS discovery: set type = "srv", "a" or "aaaa"`,
			},
		},
		{
			name: "bad name, port and backends",
			toml: `
[[frontend]]
name = "f"
listen = "127.0.0.1:7000"
discovery = { type = "a", name = "web..internal", port = 70000 }
  [[frontend.backend]]
  address = "127.0.0.1:7001"
`,
			want: []string{
				`config.toml:5: frontend "f": discovery.name: "web..internal" is not a DNS name: each label between dots is 1 to 63 characters`,
				`config.toml:5: frontend "f": discovery.port: must be between 1 and 65535, got 70000`,
				`config.toml:6: frontend "f": backend[0]: the backends come from discovery: remove the [[frontend.backend]] tables`,
			},
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

// TestBuildDNS: the Builder's DNS setters fill the same keys as a file.
func TestBuildDNS(t *testing.T) {
	r := netip.MustParseAddrPort("127.0.0.1:5353")
	cfg, err := New().AdminListen("").DNS(DNSOptions{Resolvers: []netip.AddrPort{r}, MinInterval: 200 * time.Millisecond}).
		Frontend("f").Listen("127.0.0.1:0").DiscoverDNS(DiscoveryA, "svc.test", 7000, DNSOptions{Interval: time.Second}).
		Frontend("g").Listen("127.0.0.1:0").Backend("svc.test:7001", 2).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	want := DNS{Resolvers: []netip.AddrPort{r}, Timeout: time.Second, Interval: time.Second,
		MinInterval: 200 * time.Millisecond, MaxInterval: 30 * time.Second}
	if d := cfg.Frontends[0].Discovery; d.Type != DiscoveryA || d.Name != "svc.test" || d.Port != 7000 || !reflect.DeepEqual(d.DNS, want) {
		t.Errorf("discovery %+v, want DNS %+v", d, want)
	}
	if b := cfg.Frontends[1].Backends[0]; b.Host != "svc.test" || b.Address.Port() != 7001 || b.Weight != 2 {
		t.Errorf("backend %+v", b)
	}
}
