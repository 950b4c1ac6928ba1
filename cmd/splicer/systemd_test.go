package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
)

const unitFile = "../../docs/systemd/splicer.service"

// unitSettings reads the [Service] settings of the unit, the last value
// of a key winning as in systemd (SystemCallFilter excepted: kept whole).
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = append(out[k], v)
		}
	}
	return out
}

// TestSystemdUnitScore has systemd-analyze rate the shipped unit's
// exposure, as `systemd-analyze security` does for an installed service:
// 2.0 or better is required.
func TestSystemdUnitScore(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: install Debian's systemd package (apt-get install systemd) to score the unit")
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", unitFile).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for splicer.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > 2.0 {
		t.Errorf("exposure %.1f, want 2.0 or better:\n%s", score, out)
	}
}

// TestSystemdUnitSettings checks what the unit must say beyond hardening:
// how splicer talks to systemd, who it runs as, and an fd limit sized for
// the default max_connections.
func TestSystemdUnitSettings(t *testing.T) {
	u := unitSettings(t)
	last := func(k string) string {
		if v := u[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	for k, want := range map[string]string{
		"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID", "WatchdogSec": "10s",
		"User": "splicer", "AmbientCapabilities": "CAP_NET_BIND_SERVICE", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"RuntimeDirectory": "splicer", "StateDirectory": "splicer", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictNamespaces": "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	} {
		if got := last(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if !strings.Contains(strings.Join(u["SystemCallFilter"], " "), "@system-service") {
		t.Error("SystemCallFilter lacks @system-service")
	}
	cfg, err := config.New().Frontend("f").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	need := 2*cfg.Global.MaxConnections + 2*cfg.Global.MaxPipes + 100
	if n, err := strconv.Atoi(last("LimitNOFILE")); err != nil || n < need {
		t.Errorf("LimitNOFILE=%s, want at least %d for the default max_connections", last("LimitNOFILE"), need)
	}
}

// TestMakeInstall installs into a scratch DESTDIR with PREFIX=/usr: the
// binary, the unit pointing at it, the service user, the docs and a
// config, which a second install leaves as the operator edited it.
func TestMakeInstall(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not found: install Debian's make package")
	}
	dest := t.TempDir()
	install := func() {
		t.Helper()
		cmd := exec.Command(mk, "-C", "../..", "install", "DESTDIR="+dest, "PREFIX=/usr", "BIN="+dest+"/build/splicer")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
	}
	install()
	for _, f := range []string{"/usr/bin/splicer", "/usr/lib/systemd/system/splicer.service", "/usr/lib/sysusers.d/splicer.conf",
		"/usr/share/doc/splicer/operations.md", "/usr/share/doc/splicer/config.toml.example", "/etc/splicer/config.toml",
		// benchmarks.md shows the plots.
		"/usr/share/doc/splicer/bench/side-by-side.svg"} {
		if _, err := os.Stat(dest + f); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	unit, _ := os.ReadFile(dest + "/usr/lib/systemd/system/splicer.service")
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/splicer run -c /etc/splicer/config.toml\n") ||
		strings.Contains(string(unit), "/usr/local") {
		t.Errorf("installed unit:\n%s", unit)
	}
	if out, err := exec.Command(dest+"/usr/bin/splicer", "check", "-c", dest+"/etc/splicer/config.toml").CombinedOutput(); err != nil {
		t.Errorf("the installed binary rejects the installed config: %v\n%s", err, out)
	}
	edited := []byte("# edited by the operator\n")
	if err := os.WriteFile(dest+"/etc/splicer/config.toml", edited, 0o644); err != nil {
		t.Fatal(err)
	}
	install()
	if got, _ := os.ReadFile(dest + "/etc/splicer/config.toml"); string(got) != string(edited) {
		t.Error("a second install overwrote the config")
	}
}
