package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// checkedRoute is the health suite's route with three backends.
func checkedRoute() route {
	return route{name: "checked", listen: "127.0.0.1:7001",
		backends: []string{"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"}, checkInterval: time.Second}
}

// TestSplicerHealthConfig: every backend of the route is configured, and
// checked with TCP connects at the interval.
func TestSplicerHealthConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := splicerCommand("/opt/splicer", 20000, "")(dir, []route{checkedRoute()}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "splicer.toml"))
	if err != nil {
		t.Fatalf("splicer refuses the generated config: %v", err)
	}
	f := cfg.Frontends[0]
	if f.Health.Check != config.CheckTCP || f.Health.Interval != time.Second || len(f.Backends) != 3 {
		t.Fatalf("check %q every %v over %d backends; want tcp every 1s over 3", f.Health.Check, f.Health.Interval, len(f.Backends))
	}
	for i, b := range f.Backends {
		if want := checkedRoute().backends[i]; b.Address.String() != want {
			t.Errorf("backend %d at %v, want %s", i, b.Address, want)
		}
	}
}

// TestHAProxyHealthConfig: one server per backend, each checked at the
// interval; HAProxy checks the config when installed.
func TestHAProxyHealthConfig(t *testing.T) {
	dir := t.TempDir()
	argv, err := haproxyCommand("/usr/sbin/haproxy", 20000)(dir, []route{checkedRoute()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	want := "\nlisten checked\n    bind 127.0.0.1:7001\n" +
		"    server b0 127.0.0.1:8001 check inter 1000ms\n" +
		"    server b1 127.0.0.1:8002 check inter 1000ms\n" +
		"    server b2 127.0.0.1:8003 check inter 1000ms\n"
	if !strings.Contains(string(b), want) {
		t.Errorf("haproxy.cfg lacks %q; config:\n%s", want, b)
	}
	haproxyChecks(t, argv[len(argv)-1])
}

// TestHealthSuiteTargets: only the targets with active health checks run
// the health suite; every target runs the application suite.
func TestHealthSuiteTargets(t *testing.T) {
	tl := &tools{self: "/bin/true", splicer: "/bin/true", haproxy: "/bin/true", nginx: "/bin/true", missing: map[string]string{}}
	ts, _ := buildTargets(tl, nil, []suite{suiteHealth}, 20000, "")
	var names []string
	for _, tg := range ts {
		names = append(names, tg.name)
	}
	if got := strings.Join(names, ","); got != "splicer,haproxy" {
		t.Errorf("health suite targets %s, want splicer,haproxy", got)
	}
	ts, _ = buildTargets(tl, nil, []suite{suiteApp}, 20000, "")
	if len(ts) != len(targetNames()) {
		t.Errorf("%d targets run the application suite, want all %d", len(ts), len(targetNames()))
	}
}
