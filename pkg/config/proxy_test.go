package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestProxyKeys(t *testing.T) {
	cfg, err := Parse([]byte(`
[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"
send_proxy = "v2"
send_proxy_tlvs = ["unique_id", "authority", "crc32c"]
accept_proxy = true
accept_proxy_from = ["10.0.0.0/24", "2001:db8::1"]
accept_proxy_optional = true
proxy_header_timeout = "1500ms"
  [[frontend.backend]]
  address = "10.0.1.1:5432"
  [[frontend.backend]]
  address = "10.0.1.2:5432"
  send_proxy = "v1"
  [[frontend.backend]]
  address = "10.0.1.3:5432"
  send_proxy = "none"

[[frontend]]
name = "dns"
protocol = "udp"
listen = "127.0.0.1:5353"
accept_proxy = true
accept_proxy_from = "127.0.0.0/8"
  [[frontend.backend]]
  address = "127.0.0.1:53"
`), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	pg := cfg.Frontends[0]
	if pg.SendProxy != ProxyV2 || !reflect.DeepEqual(pg.SendProxyTLVs, []string{"unique_id", "authority", "crc32c"}) ||
		!pg.AcceptProxy || !pg.AcceptProxyOptional || pg.ProxyHeaderTimeout != 1500*time.Millisecond {
		t.Errorf("pg: %+v", pg)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("2001:db8::1/128")}
	if !reflect.DeepEqual(pg.AcceptProxyFrom, want) {
		t.Errorf("accept_proxy_from = %v, want %v", pg.AcceptProxyFrom, want)
	}
	var got []string
	for _, b := range pg.Backends {
		got = append(got, b.SendProxy)
	}
	if !reflect.DeepEqual(got, []string{ProxyV2, ProxyV1, ProxyNone}) {
		t.Errorf("backend send_proxy = %v: want the frontend's where unset", got)
	}
	dns := cfg.Frontends[1]
	if !dns.AcceptProxy || dns.SendProxy != ProxyNone || dns.Backends[0].SendProxy != ProxyNone {
		t.Errorf("dns: %+v", dns)
	}

	// The Builder sets the same keys.
	built, err := New().Frontend("pg").Listen("127.0.0.1:6432").SendProxy(ProxyV1).
		AcceptProxy("10.0.0.0/24").AcceptProxyOptional(true).ProxyHeaderTimeout(time.Second).
		Backend("10.0.1.1:5432", 1).BackendOpts(BackendOptions{SendProxy: ProxyV2}).SendProxyTLVs(ProxyTLVCRC32C).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	f := built.Frontends[0]
	if f.SendProxy != ProxyV1 || f.Backends[0].SendProxy != ProxyV2 || !f.AcceptProxy || !f.AcceptProxyOptional ||
		f.ProxyHeaderTimeout != time.Second || len(f.AcceptProxyFrom) != 1 || len(f.SendProxyTLVs) != 1 {
		t.Errorf("built: %+v", f)
	}
}

func TestProxyRefusals(t *testing.T) {
	cases := []struct {
		name, toml string
		want       []string
	}{{
		name: "unknown versions and tlvs",
		toml: `
[[frontend]]
name = "demo"
listen = "127.0.0.1:7000"
backend = [{ address = "127.0.0.1:7001", send_proxy = "2" }]
send_proxy = "v3"
send_proxy_tlvs = ["unique_id", "ssl", "unique_id"]
`,
		want: []string{
			`config.toml:5: frontend "demo": backend[0].send_proxy: must be one of none, v1, v2; got "2"`,
			`config.toml:6: frontend "demo": send_proxy: must be one of none, v1, v2; got "v3"`,
			`config.toml:7: frontend "demo": send_proxy_tlvs: must be one of unique_id, authority, crc32c; got "ssl"`,
			`config.toml:7: frontend "demo": send_proxy_tlvs: "unique_id" is listed twice`,
			`config.toml:7: frontend "demo": send_proxy_tlvs: only applies where send_proxy is "v2" (on the frontend or a backend)`,
		},
	}, {
		name: "accept_proxy without senders",
		toml: demoFrontend + "accept_proxy = true\n",
		want: []string{`config.toml:2: frontend "demo": accept_proxy_from: required with accept_proxy: the networks of the proxies trusted to send the header, such as "10.0.0.0/24" (write "0.0.0.0/0" and "::/0" to trust any sender)`},
	}, {
		name: "accept keys without accept_proxy",
		toml: demoFrontend + `accept_proxy_from = "10.0.0.0/8"
accept_proxy_optional = true
proxy_header_timeout = "1s"
`,
		want: []string{
			`config.toml:6: frontend "demo": accept_proxy_from: only applies with accept_proxy = true`,
			`config.toml:7: frontend "demo": accept_proxy_optional: only applies with accept_proxy = true`,
			`config.toml:8: frontend "demo": proxy_header_timeout: only applies with accept_proxy = true`,
		},
	}, {
		name: "bad sender list and timeout",
		toml: demoFrontend + `accept_proxy = true
accept_proxy_from = ["10.0.0.0/33"]
proxy_header_timeout = "0s"
`,
		want: []string{
			`config.toml:7: frontend "demo": accept_proxy_from: "10.0.0.0/33" is not an IP address or CIDR prefix`,
			`config.toml:8: frontend "demo": proxy_header_timeout: must be positive, got 0s`,
		},
	}, {
		name: "sending on udp",
		toml: `
[[frontend]]
name = "dns"
protocol = "udp"
listen = "127.0.0.1:5353"
send_proxy = "v2"
send_proxy_tlvs = ["crc32c"]
accept_proxy = true
accept_proxy_from = "127.0.0.1"
proxy_header_timeout = "1s"
backend = [{ address = "127.0.0.1:53", send_proxy = "v1" }]
`,
		want: []string{
			`config.toml:6: frontend "dns": send_proxy: only applies to tcp frontends`,
			`config.toml:7: frontend "dns": send_proxy_tlvs: only applies to tcp frontends`,
			`config.toml:10: frontend "dns": proxy_header_timeout: only applies to tcp frontends`,
			`config.toml:11: frontend "dns": backend[0].send_proxy: only applies to tcp frontends`,
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml), "config.toml")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
