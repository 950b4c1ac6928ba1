package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

func runCLI(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckExample(t *testing.T) {
	code, out, errOut := runCLI(context.Background(), "check", "-c", "../../config.toml.example")
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		"../../config.toml.example: OK: 1 frontend(s), 2 backend(s)",
		`frontend "demo": tcp 127.0.0.1:7000, strategy roundrobin, health check tcp`,
		"127.0.0.1:7001  127.0.0.1:7001  2       -        primary",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	bad := "[[frontend]]\nname = \"a\"\nlisten = \"x\"\n[[frontend.backend]]\naddress = \"127.0.0.1:5\"\nwieght = 3\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(context.Background(), "check", "-c", path)
	if code != exitFail || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	want := path + ":3: frontend \"a\": listen: \"x\" is not IP:port, such as \"127.0.0.1:7000\" or \"[::1]:7000\"\n" +
		path + ":6: frontend[0].backend[0]: unknown key \"wieght\" (did you mean \"weight\"?)\n"
	if errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}
}

// run with a config that does not load reports each problem as a JSON line
// (file, line and field apart) when the log format is json, the default;
// as check's lines when it is console, by the flag or by the file's [log].
func TestRunReportsConfigProblemsInTheLogFormat(t *testing.T) {
	dir := t.TempDir()
	bad := "[[frontend]]\nname = \"a\"\nlisten = \"x\"\n[[frontend.backend]]\naddress = \"127.0.0.1:5\"\nwieght = 3\n"
	path := filepath.Join(dir, "bad.toml")
	console := filepath.Join(dir, "console.toml")
	for p, text := range map[string]string{path: bad, console: "[log]\nformat = \"console\"\n" + bad} {
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, _, errOut := runCLI(context.Background(), "run", "-c", path)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != exitFail || len(lines) != 2 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var first struct {
		Level, File, Field, Error, Message, Time string
		Line                                     int
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	if first.Level != "error" || first.File != path || first.Line != 3 || first.Field != `frontend "a": listen` ||
		!strings.HasPrefix(first.Error, `"x" is not IP:port`) || first.Message != "configuration problem: not started" ||
		len(first.Time) != len("2006-01-02T15:04:05.000Z") {
		t.Errorf("first line %+v", first)
	}
	want := path + ":3: frontend \"a\": listen: \"x\" is not IP:port, such as \"127.0.0.1:7000\" or \"[::1]:7000\"\n"
	if code, _, errOut := runCLI(context.Background(), "run", "-c", path, "-log-format", "console"); code != exitFail ||
		!strings.HasPrefix(errOut, want) {
		t.Errorf("-log-format console: exit %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(context.Background(), "run", "-c", console); code != exitFail ||
		!strings.HasPrefix(errOut, console+":5: ") {
		t.Errorf("[log] format console: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"check"}, {"check", "-x"}, {"version", "extra"}} {
		if code, _, _ := runCLI(context.Background(), args...); code != exitUsage {
			t.Errorf("splicer %v: exit %d, want %d", args, code, exitUsage)
		}
	}
	for _, args := range [][]string{{"-h"}, {"run", "-h"}, {"check", "-h"}, {"version", "-h"}} {
		if code, _, _ := runCLI(context.Background(), args...); code != exitOK {
			t.Errorf("splicer %v: exit %d, want %d", args, code, exitOK)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(context.Background(), "version")
	if code != exitOK || !strings.HasPrefix(out, "splicer dev (commit unknown, go1.") {
		t.Fatalf("exit %d, %q", code, out)
	}
}

// TestRunServesUntilCancelled runs the daemon on a config with a demo
// backend, proxies one connection through it, then stops it as a signal
// would and expects a clean exit.
func TestRunServesUntilCancelled(t *testing.T) {
	// The demo backend must be at a known address; it is picked here and
	// bound by the daemon a moment later. The frontend binds port 0 and
	// is found in the log, so no other test can take it in between.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	back := ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "c.toml")
	cfg := "[admin]\nlisten = \"\"\n[[frontend]]\nname = \"t\"\nlisten = \"127.0.0.1:0\"" +
		"\n[[frontend.backend]]\naddress = \"" + back + "\"\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut testutil.SyncBuffer
	go func() { done <- run(ctx, []string{"run", "-c", path, "-demo"}, &bytes.Buffer{}, &errOut) }()

	var front string
	testutil.WaitFor(t, 10*time.Second, "the frontend's listen line", func() bool {
		front = listenAddr(errOut.String())
		return front != ""
	})
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	c.Close()
	if got, want := string(buf[:n]), "hello from demo backend "+back+"\n"; got != want {
		t.Fatalf("greeting %q, want %q", got, want)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(errOut.String(), `"message":"splicer stopped"`) {
		t.Errorf("no stop line in log:\n%s", errOut.String())
	}
}

// listenAddr finds the first address of the "frontend listening" line in a
// JSON log, or "".
func listenAddr(log string) string {
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			Message string   `json:"message"`
			Listen  []string `json:"listen"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Message == "frontend listening" && len(rec.Listen) > 0 {
			return rec.Listen[0]
		}
	}
	return ""
}

func TestCheckNamesPassiveOnlyHealth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "udp.toml")
	cfg := "[[frontend]]\nname = \"dns\"\nlisten = \"127.0.0.1:5353\"\nprotocol = \"udp\"\n" +
		"[[frontend.backend]]\naddress = \"127.0.0.1:53\"\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(context.Background(), "check", "-c", path)
	want := `frontend "dns": udp 127.0.0.1:5353, strategy roundrobin, health check none (passive only: out after 5 failures for 2s)`
	if code != exitOK || !strings.Contains(out, want) {
		t.Errorf("exit %d, output:\n%s%s\nwant a line %q", code, out, errOut, want)
	}
}

// TestCheckNamesRolesAndDiscovery: the summary shows the role a frontend
// requires and where a discovered frontend's backends come from.
func TestCheckNamesRolesAndDiscovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "roles.toml")
	cfg := "[[frontend]]\nname = \"pg-ro\"\nlisten = \"127.0.0.1:5433\"\n" +
		"[frontend.health]\ncheck = \"postgres\"\nrole = \"replica\"\nmax_lag = \"10s\"\n" +
		"[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n" +
		"[[frontend]]\nname = \"cache\"\nlisten = \"127.0.0.1:6379\"\n" +
		"discovery = { sentinel = [\"127.0.0.1:26379\", \"127.0.0.2:26379\"], master = \"cache\" }\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(context.Background(), "check", "-c", path)
	for _, want := range []string{
		`frontend "pg-ro": tcp 127.0.0.1:5433, strategy roundrobin, health check postgres (role replica, max_lag 10s)`,
		`  backends: the master of master set "cache", from Sentinel 127.0.0.1:26379 127.0.0.2:26379`,
	} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("exit %d, output:\n%s%s\nwant a line %q", code, out, errOut, want)
		}
	}
}
