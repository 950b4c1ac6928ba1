package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// mixedRoutes are a TCP route and the two UDP routes of the UDP suite.
func mixedRoutes() []route {
	return []route{
		{name: "echo", listen: "127.0.0.1:7001", backend: "127.0.0.1:8001"},
		{name: "udp-echo", listen: "127.0.0.1:7002", backend: "127.0.0.1:8002", udp: true},
		{name: "udp-query", listen: "127.0.0.1:7003", backend: "127.0.0.1:8002", udp: true, responses: 1},
		{name: "echo-pp2", listen: "127.0.0.1:7004", backend: "127.0.0.1:8004", sendProxy: true},
	}
}

// TestSplicerConfig loads the generated config with splicer's own parser,
// so that a key splicer would refuse fails here rather than in a run.
func TestSplicerConfig(t *testing.T) {
	dir := t.TempDir()
	argv, err := splicerCommand("/opt/splicer", 20000, "")(dir, mixedRoutes())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "splicer.toml")
	if want := []string{"/opt/splicer", "run", "-c", path, "-log-level", "warn"}; !slices.Equal(argv, want) {
		t.Fatalf("argv = %q, want %q", argv, want)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("splicer refuses the generated config: %v", err)
	}
	udpIdle, err := time.ParseDuration(udpIdleTimeout)
	if err != nil {
		t.Fatal(err)
	}
	type frontend struct {
		name, listen, protocol, check, backend string
		idle                                   time.Duration
	}
	want := []frontend{
		{"echo", "127.0.0.1:7001", config.ProtocolTCP, config.CheckNone, "127.0.0.1:8001", 10 * time.Minute},
		{"udp-echo", "127.0.0.1:7002", config.ProtocolUDP, config.CheckNone, "127.0.0.1:8002", udpIdle},
		{"udp-query", "127.0.0.1:7003", config.ProtocolUDP, config.CheckNone, "127.0.0.1:8002", udpIdle},
		{"echo-pp2", "127.0.0.1:7004", config.ProtocolTCP, config.CheckNone, "127.0.0.1:8004", 10 * time.Minute},
	}
	if len(cfg.Frontends) != len(want) {
		t.Fatalf("%d frontends, want %d", len(cfg.Frontends), len(want))
	}
	for i, f := range cfg.Frontends {
		if len(f.Listen) != 1 || len(f.Backends) != 1 {
			t.Fatalf("frontend %q: listen %v, %d backends; want one of each", f.Name, f.Listen, len(f.Backends))
		}
		got := frontend{f.Name, f.Listen[0].String(), f.Protocol, f.Health.Check, f.Backends[0].Address.String(), f.IdleTimeout}
		if got != want[i] {
			t.Errorf("frontend %d = %+v, want %+v", i, got, want[i])
		}
	}
	for i, want := range []string{config.ProxyNone, config.ProxyNone, config.ProxyNone, config.ProxyV2} {
		if got := cfg.Frontends[i].SendProxy; got != want {
			t.Errorf("frontend %q: send_proxy %q, want %q", cfg.Frontends[i].Name, got, want)
		}
	}
	// The UDP flow settings: unlimited replies on the long-lived flows, one
	// on the queries, and the fd limit as the flow cap.
	for i, responses := range map[int]int{1: -1, 2: 1} {
		f := cfg.Frontends[i]
		if f.Responses != responses || f.MaxFlows != 20000 {
			t.Errorf("frontend %q: responses %d, max_flows %d; want %d, 20000", f.Name, f.Responses, f.MaxFlows, responses)
		}
	}
}

func TestNginxConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := nginxCommand("/usr/sbin/nginx", "", 20000)(dir, mixedRoutes()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, block := range []string{
		"worker_processes 2;\n",
		"\n    server {\n        listen 127.0.0.1:7001 reuseport;\n        proxy_pass 127.0.0.1:8001;\n    }\n",
		// No proxy_responses: nginx then keeps the flow until idle.
		"\n    server {\n        listen 127.0.0.1:7002 udp reuseport;\n        proxy_pass 127.0.0.1:8002;\n        proxy_timeout 30s;\n    }\n",
		"\n    server {\n        listen 127.0.0.1:7003 udp reuseport;\n        proxy_pass 127.0.0.1:8002;\n        proxy_timeout 30s;\n        proxy_responses 1;\n    }\n",
	} {
		if !strings.Contains(text, block) {
			t.Errorf("nginx.conf lacks %q; config:\n%s", block, text)
		}
	}
}

// TestNginxAcceptsConfig has nginx itself check the generated config, when
// nginx with its stream module is installed.
func TestNginxAcceptsConfig(t *testing.T) {
	tl := &tools{missing: map[string]string{}, versions: map[string]string{}}
	tl.findNginx()
	if tl.nginx == "" {
		t.Skip(tl.missing[targetNginx])
	}
	dir := t.TempDir()
	argv, err := nginxCommand(tl.nginx, tl.nginxStream, 1024)(dir, mixedRoutes())
	if err != nil {
		t.Fatal(err)
	}
	// nginx -t with the run's prefix and config, before "-g daemon off;".
	args := append(slices.Clone(argv[1:len(argv)-2]), "-t")
	if out, err := exec.Command(argv[0], args...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// TestHAProxyConfig checks the generated HAProxy config, and has HAProxy
// itself check it when installed: the PROXY route sends a v2 header.
func TestHAProxyConfig(t *testing.T) {
	dir := t.TempDir()
	routes := []route{
		{name: "echo", listen: "127.0.0.1:7001", backend: "127.0.0.1:8001"},
		{name: "echo-pp2", listen: "127.0.0.1:7004", backend: "127.0.0.1:8004", sendProxy: true},
	}
	argv, err := haproxyCommand("/usr/sbin/haproxy", 20000)(dir, routes)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range []string{
		"\nlisten echo\n    bind 127.0.0.1:7001\n    server backend 127.0.0.1:8001\n",
		"\nlisten echo-pp2\n    bind 127.0.0.1:7004\n    server backend 127.0.0.1:8004 send-proxy-v2\n",
	} {
		if !strings.Contains(string(b), block) {
			t.Errorf("haproxy.cfg lacks %q; config:\n%s", block, b)
		}
	}
	haproxyChecks(t, argv[len(argv)-1])
}

// haproxyChecks has HAProxy check the config at path, when installed.
func haproxyChecks(t *testing.T, path string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("install haproxy (Debian package haproxy) to have it check the config")
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

// TestSplicerAffinityConfig: -splicer-cpu-affinity reaches splicer's
// global.cpu_affinity, and its absence pins nothing.
func TestSplicerAffinityConfig(t *testing.T) {
	for _, spec := range []string{"", "auto", "1,0"} {
		dir := t.TempDir()
		if _, err := splicerCommand("/opt/splicer", 20000, spec)(dir, mixedRoutes()); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(filepath.Join(dir, "splicer.toml"))
		if err != nil {
			t.Fatalf("%q: splicer refuses the generated config: %v", spec, err)
		}
		if got := cfg.Global.CPUAffinity.String(); got != spec {
			t.Errorf("cpu_affinity %q, want %q", got, spec)
		}
	}
}
