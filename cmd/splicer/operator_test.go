package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestStatsJSONMatchesAPI runs `splicer stats -json` against a daemon that
// served and refused some clients, parses what it prints and checks it
// against GET /api/v1/stats: the same document but for what moves between
// two calls (uptime, fds, the latest second). The table prints a
// frontend's refused clients under FAILED, where it printed "-".
func TestStatsJSONMatchesAPI(t *testing.T) {
	dir := t.TempDir()
	e0 := startEcho(t)
	adminAddr := freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+
		frontendConfig("main", "127.0.0.1:0", "", be{"e0", e0.addr, 1})+
		frontendConfig("dead", "127.0.0.1:0", "retries = 0\n[frontend.health]\ncheck = \"none\"\npassive_fall = 0\n",
			be{"gone", testutil.RefusedAddr(t, "tcp").String(), 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	for _, fe := range []string{"main", "dead"} {
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", frontendAddr(t, p, fe))
			if err != nil && fe == "dead" {
				continue // accepted, and reset before the connect returned
			}
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("ping"))
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			c.Close()
		}
	}
	c := adminClient(t, dir, adminAddr)
	testutil.WaitFor(t, 10*time.Second, "rates in the stats", func() bool {
		st, err := c.Stats(context.Background())
		return err == nil && st.Frontends[0].Active == 0 && st.Frontends[0].Rates != nil && st.Frontends[0].Rates.Peak.Conns > 0 &&
			st.Frontends[1].Rejected == 2
	})

	code, out, errOut := runCLI(context.Background(), "stats", "-json", "-token-file", adminTokenFile(dir), "-admin", adminAddr)
	if code != exitOK {
		t.Fatalf("stats -json: %d %s", code, errOut)
	}
	var got stats.Stats
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stats -json printed no stats document: %v\n%s", err, out)
	}
	want, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*stats.Stats{&got, &want} {
		st.Uptime, st.FDs = 0, 0
		for i := range st.Frontends {
			moving(st.Frontends[i].Rates)
			for j := range st.Frontends[i].Backends {
				b := &st.Frontends[i].Backends[j]
				moving(b.Rates)
				b.Health = stats.HealthStats{Checked: b.Health.Checked, Up: b.Health.Up}
			}
		}
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("stats -json:\n%s\nAPI:\n%s", gotJSON, wantJSON)
	}
	if got.Frontends[0].Total != 2 || got.Frontends[0].BytesIn != 8 || got.Frontends[1].Rejected != 2 ||
		got.Frontends[0].Rates.Peak.Conns <= 0 || got.Frontends[0].Backends[0].Rates == nil {
		t.Errorf("figures: %+v", got.Frontends)
	}

	code, out, errOut = runCLI(context.Background(), "stats", "-admin", adminAddr, "-token-file", adminTokenFile(dir))
	if code != exitOK {
		t.Fatalf("stats: %d %s", code, errOut)
	}
	header, row := tableRow(t, out, "dead")
	if failed := row[slicesIndex(header, "FAILED")]; failed != "2" {
		t.Errorf("frontend dead: FAILED %q, want 2 (its refused clients):\n%s", failed, out)
	}
}

// moving zeroes the figures of r that change from one second to the next.
func moving(r *stats.Rates) {
	if r != nil {
		r.Now, r.Window = stats.Point{}, 0
	}
}

// tableRow finds the header and the row of name in a table printed by
// splicer stats, split into cells at runs of two spaces or more (a cell
// such as "50 (10)" holds one space).
func tableRow(t *testing.T, table, name string) (header, row []string) {
	t.Helper()
	split := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(table, "\n") {
		cells := split.Split(strings.TrimSpace(line), -1)
		if cells[0] == "NAME" {
			header = cells
		}
		if cells[0] == name && header != nil {
			return header, cells
		}
	}
	t.Fatalf("no row %q in:\n%s", name, table)
	return nil, nil
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// frontendAddr finds the bound address of frontend name in the log.
func frontendAddr(t *testing.T, p *proc, name string) string {
	t.Helper()
	for _, rec := range p.records() {
		if rec["message"] == "frontend listening" && rec["frontend"] == name {
			if l, ok := rec["listen"].([]any); ok && len(l) > 0 {
				return l[0].(string)
			}
		}
	}
	t.Fatalf("frontend %q not in the log:\n%s", name, p.logs())
	return ""
}

// TestConnsListAndKill lists a client's connection with `splicer conns`
// (the admin address from $SPLICER_ADMIN, the flags after the arguments)
// and kills it with `splicer conns kill`: the client gets a reset.
func TestConnsListAndKill(t *testing.T) {
	dir := t.TempDir()
	e0 := startEcho(t)
	adminAddr := freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+frontendConfig("main", "127.0.0.1:0", "", be{"e0", e0.addr, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	client, err := net.Dial("tcp", frontendAddr(t, p, "main"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	client.Write([]byte("hello"))
	if _, err := io.ReadFull(client, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	t.Setenv(admin.AdminEnv, adminAddr)
	t.Setenv(admin.TokenFileEnv, adminTokenFile(dir))
	code, out, errOut := runCLI(context.Background(), "conns", "-frontend", "main")
	if code != exitOK {
		t.Fatalf("conns: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID  FRONTEND  CLIENT") {
		t.Fatalf("conns:\n%s", out)
	}
	fields := strings.Fields(lines[1])
	if fields[1] != "main" || fields[2] != client.LocalAddr().String() || fields[3] != "e0" || fields[4] != "relaying" ||
		fields[6] != "5" || fields[7] != "5" {
		t.Errorf("conns row %q", lines[1])
	}
	if code, out, errOut = runCLI(context.Background(), "conns", "kill", fields[0], "-token-file", adminTokenFile(dir)); code != exitOK ||
		out != "connection "+fields[0]+" closed\n" {
		t.Fatalf("conns kill: %d %q %s", code, out, errOut)
	}
	if _, err := io.ReadAll(client); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the client read %v, want a reset", err)
	}
	if code, _, errOut = runCLI(context.Background(), "conns", "kill", fields[0]); code != exitFail ||
		!strings.Contains(errOut, "not found (HTTP 404)") {
		t.Errorf("a second kill: %d %s", code, errOut)
	}
	if code, _, _ = runCLI(context.Background(), "conns", "kill", "x"); code != exitUsage {
		t.Errorf("kill x: exit %d, want %d", code, exitUsage)
	}
}

// TestCheckAndStartWarn checks a config with one warning of each source
// (a key that does nothing, a backend that is its own frontend, and more
// connections than any open-file limit allows): check prints each with
// its key and line and exits 0; the daemon logs the same at start.
func TestCheckAndStartWarn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "splicer.toml")
	loop := freeAddr(t)
	writeFile(t, path, `[global]
max_connections = 1000000000
runtime_dir = "`+filepath.Join(dir, "run")+`"

[admin]
listen = ""

[[frontend]]
name = "pg"
listen = "127.0.0.1:0"
maglev_table_size = 251

  [[frontend.backend]]
  address = "127.0.0.1:1"

[[frontend]]
name = "loop"
listen = "`+loop+`"

  [[frontend.backend]]
  address = "`+loop+`"
`)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^warning: ` + regexp.QuoteMeta(path) + `:2: global\.max_connections: needs up to \d+ file descriptors ` +
			`\(2 × 1000000000 TCP connections \+ 2 × 1024 pipes \+ 64 × \d+ workers \+ 100 spare\) but RLIMIT_NOFILE is \d+ here: ` +
			`beyond it, accepting pauses \(EMFILE\) and clients wait\. Raise the limit \(LimitNOFILE= under systemd\) or lower this$`),
		regexp.MustCompile(`^warning: ` + regexp.QuoteMeta(path) + `:11: frontend "pg": maglev_table_size: has no effect: ` +
			`only the maglev strategy uses it \(strategy is "roundrobin"\)$`),
		regexp.MustCompile(`^warning: ` + regexp.QuoteMeta(path) + `:21: frontend "loop": backend\[0\]\.address: ` + regexp.QuoteMeta(loop) +
			` is this frontend's own listen address ` + regexp.QuoteMeta(loop) + `: a client sent there comes back to the frontend, over and over$`),
	}
	code, out, errOut := runCLI(context.Background(), "check", "-c", path)
	if code != exitOK || !strings.Contains(out, "OK: 2 frontend(s)") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != len(want) {
		t.Fatalf("check printed %d lines for %d warnings:\n%s", len(lines), len(want), errOut)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("warning %d:\n%s\ndoes not match\n%s", i, lines[i], re)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	var logs testutil.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- runWith(ctx, []string{"run", "-c", path}, io.Discard, &logs, nil) }()
	testutil.WaitFor(t, 10*time.Second, "the daemon started", func() bool { return strings.Contains(logs.String(), "splicer started") })
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("run: exit %d", code)
	}
	var logged []string
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["message"] == "config warning" {
			// A problem is logged with its parts apart (file, line,
			// field, error): put them together as check prints them.
			line, _ := rec["line"].(float64)
			file, _ := rec["file"].(string)
			field, _ := rec["field"].(string)
			msg, _ := rec["error"].(string)
			p := config.Problem{File: file, Line: int(line), Path: field, Msg: msg}
			logged = append(logged, "warning: "+p.String())
		}
	}
	if len(logged) != len(want) {
		t.Fatalf("the daemon logged %d config warnings, want %d:\n%s", len(logged), len(want), logs.String())
	}
	for i, re := range want {
		if !re.MatchString(logged[i]) {
			t.Errorf("logged warning %d:\n%s\ndoes not match\n%s", i, logged[i], re)
		}
	}
}

// TestSecondStopSignal stops a daemon that holds a connection: the first
// SIGTERM waits for it (shutdown_timeout is a minute), the second closes
// it at once, and the process still exits 0, so that `make run` stopped
// by its own Ctrl-C and the one make forwards reports no failure.
func TestSecondStopSignal(t *testing.T) {
	dir := t.TempDir()
	e0 := startEcho(t)
	adminAddr := freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Minute)+frontendConfig("main", "127.0.0.1:0", "", be{"e0", e0.addr, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	client, err := net.Dial("tcp", frontendAddr(t, p, "main"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.Write([]byte("x"))
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(10*time.Second, "shutting down: stopped accepting, waiting for connections")
	if _, gone := p.exited(300 * time.Millisecond); gone {
		t.Fatal("the first SIGTERM did not wait for the connection")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	code, gone := p.exited(10 * time.Second)
	if !gone || code != 0 {
		t.Fatalf("after the second SIGTERM: exited %v, code %d\n%s", gone, code, p.logs())
	}
	if !strings.Contains(p.logs(), "second stop signal: remaining connections closed") {
		t.Errorf("log:\n%s", p.logs())
	}
	// Closed at once: a reset or an end of stream, not a wait.
	if _, err := io.ReadAll(client); isTimeout(err) {
		t.Error("the held connection was not closed")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
