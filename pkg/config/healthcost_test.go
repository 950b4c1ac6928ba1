package config

import (
	"strings"
	"testing"
	"time"
)

// TestParseProbeCost: the two keys that make checks cheaper resolve with
// their defaults, and the Builder sets the same.
func TestParseProbeCost(t *testing.T) {
	for _, tc := range []struct {
		name            string
		toml            string // appended to demoFrontend
		keepalive, idle bool
	}{
		{"defaults, tcp check", "", false, false},
		{"defaults, http check", "[frontend.health]\ncheck = \"http\"\n", true, false},
		{"keep-alive off", "[frontend.health]\ncheck = \"http\"\nhttp_keepalive = false\n", false, false},
		{"idle only", "[frontend.health]\ncheck = \"http\"\nprobe_when_idle_only = true\n", true, true},
		{"idle only, tcp", "[frontend.health]\nprobe_when_idle_only = true\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(demoFrontend+tc.toml), "config.toml")
			if err != nil {
				t.Fatal(err)
			}
			h := cfg.Frontends[0].Health
			if h.HTTPKeepalive != tc.keepalive || h.ProbeWhenIdleOnly != tc.idle {
				t.Errorf("http_keepalive %v (check %q), probe_when_idle_only %v; want %v, %v",
					h.HTTPKeepalive, h.Check, h.ProbeWhenIdleOnly, tc.keepalive, tc.idle)
			}
		})
	}
	built, err := New().Frontend("demo").Listen("127.0.0.1:7000").Backend("127.0.0.1:7001", 1).
		HealthCheck(CheckHTTP).HealthInterval(time.Second).HealthHTTPKeepalive(false).HealthProbeWhenIdleOnly(true).Build()
	if err != nil {
		t.Fatal(err)
	}
	if h := built.Frontends[0].Health; h.HTTPKeepalive || !h.ProbeWhenIdleOnly {
		t.Errorf("built: http_keepalive %v, probe_when_idle_only %v; want false, true", h.HTTPKeepalive, h.ProbeWhenIdleOnly)
	}
	if _, err := New().Frontend("demo").Listen("127.0.0.1:7000").Backend("127.0.0.1:7001", 1).
		HealthHTTPKeepalive(true).Build(); err == nil || !strings.Contains(err.Error(), `health.http_keepalive: only applies to check "http"; got check "tcp"`) {
		t.Errorf("built http_keepalive on a tcp check: %v", err)
	}
}

// TestParseProbeCostProblems: each key that configures a part that does
// not run is refused at its line.
func TestParseProbeCostProblems(t *testing.T) {
	const udpFrontend = `
[[frontend]]
name = "dns"
protocol = "udp"
listen = "127.0.0.1:5353"
backend = [{ address = "127.0.0.1:5354" }]
responses = 0
`
	for _, tc := range []struct {
		name string
		toml string
		want string
	}{
		{
			name: "keep-alive on a tcp check",
			toml: demoFrontend + "[frontend.health]\nhttp_keepalive = true\n",
			want: `config.toml:7: frontend "demo": health.http_keepalive: only applies to check "http"; got check "tcp"`,
		},
		{
			name: "keep-alive off on a redis check",
			toml: demoFrontend + "[frontend.health]\ncheck = \"redis\"\nhttp_keepalive = false\n",
			want: `config.toml:8: frontend "demo": health.http_keepalive: only applies to check "http"; got check "redis"`,
		},
		{
			name: "idle only without probes",
			toml: demoFrontend + "[frontend.health]\ncheck = \"none\"\nprobe_when_idle_only = true\n",
			want: `config.toml:8: frontend "demo": health.probe_when_idle_only: only applies with an active check: check "none" sends no probe to skip`,
		},
		{
			name: "idle only off, without probes",
			toml: demoFrontend + "[frontend.health]\ncheck = \"none\"\nprobe_when_idle_only = false\n",
			want: `config.toml:8: frontend "demo": health.probe_when_idle_only: only applies with an active check: check "none" sends no probe to skip`,
		},
		{
			name: "idle only with a role",
			toml: demoFrontend + "[frontend.health]\ncheck = \"postgres\"\nrole = \"primary\"\nprobe_when_idle_only = true\n",
			want: `config.toml:9: frontend "demo": health.probe_when_idle_only: cannot be combined with health.role: ` +
				`traffic proves a server answers, not which role it has, so role probes must run every interval`,
		},
		{
			name: "idle only where no reply comes",
			toml: udpFrontend + "[frontend.health]\ncheck = \"send_expect\"\nsend = \"ping\"\nexpect = \"pong\"\nprobe_when_idle_only = true\n",
			want: `config.toml:12: frontend "dns": health.probe_when_idle_only: needs replies to prove a backend, and responses = 0 expects none: no probe would ever be skipped`,
		},
		{
			name: "wrong type",
			toml: demoFrontend + "[frontend.health]\ncheck = \"http\"\nhttp_keepalive = \"yes\"\nprobe_when_idle_only = 1\n",
			want: `config.toml:8: frontend "demo": health.http_keepalive: must be true or false, got a string` + "\n" +
				`config.toml:9: frontend "demo": health.probe_when_idle_only: must be true or false, got an integer`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml), "config.toml")
			if err == nil {
				t.Fatalf("Parse succeeded, want:\n%s", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
