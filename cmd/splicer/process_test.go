package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// The tests in this package that need a real daemon process run this test
// binary as splicer: with SPLICER_TEST_MAIN=1 in its environment, TestMain
// runs main instead of the tests. An upgrade re-executes the binary with
// the same environment, so the new process is a splicer too.
const asMainEnv = "SPLICER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// proc is a splicer process started by a test.
type proc struct {
	t     testing.TB
	cmd   *exec.Cmd
	log   string // stderr, a file: an upgraded process inherits it
	admin string
	done  chan struct{}
	code  int
}

// testBinary returns the path of this test binary, the splicer the tests
// run.
func testBinary(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// startSplicer runs exe (the test binary or a copy) as `splicer run -c
// config` and waits until it serves. Cleanup stops it, and any process it
// upgraded to (testutil.StopProcesses: SIGKILL, or SIGTERM when coverage
// is measured, so that what they ran counts).
func startSplicer(t testing.TB, exe, config, admin string, env ...string) *proc {
	t.Helper()
	p := launch(t, exe, config, admin, env...)
	p.waitLog(15*time.Second, "splicer started")
	return p
}

// launch starts the process without waiting for it to serve.
func launch(t testing.TB, exe, config, admin string, env ...string) *proc {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "splicer-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "run", "-c", config)
	cmd.Env = append(append(os.Environ(), asMainEnv+"=1"), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p := &proc{t: t, cmd: cmd, log: logf.Name(), admin: admin, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		testutil.StopProcesses(t, p.pids()...)
		<-p.done
		if strings.Contains(p.logs(), "DATA RACE") {
			t.Errorf("a splicer process reported a data race:\n%s", p.logs())
		}
		if t.Failed() {
			t.Logf("splicer log:\n%s", p.logs())
		}
	})
	return p
}

// pids lists the process and the ones it upgraded to, from the log.
func (p *proc) pids() []int {
	out := []int{p.cmd.Process.Pid}
	for _, rec := range p.records() {
		if rec["message"] == "splicer started" {
			if pid, ok := rec["pid"].(float64); ok && int(pid) != out[0] {
				out = append(out, int(pid))
			}
		}
	}
	return out
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// records parses the JSON log lines.
func (p *proc) records() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// logRecord returns the last log record with message msg; nil when none.
func (p *proc) logRecord(msg string) map[string]any {
	var last map[string]any
	for _, rec := range p.records() {
		if rec["message"] == msg {
			last = rec
		}
	}
	return last
}

// waitLog waits for n log records with message msg (1 when n is omitted).
func (p *proc) waitLog(d time.Duration, msg string, n ...int) {
	p.t.Helper()
	want := 1
	if len(n) > 0 {
		want = n[0]
	}
	testutil.WaitFor(p.t, d, fmt.Sprintf("%d log line(s) %q", want, msg), func() bool {
		select {
		case <-p.done:
			p.t.Fatalf("splicer exited (%d) while waiting for %q:\n%s", p.code, msg, p.logs())
		default:
		}
		got := 0
		for _, rec := range p.records() {
			if rec["message"] == msg {
				got++
			}
		}
		return got >= want
	})
}

// exited waits up to d for the process to exit and returns its code.
func (p *proc) exited(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.code, true
	case <-time.After(d):
		return 0, false
	}
}

// stats fetches the daemon's stats.
func (p *proc) stats() stats.Stats {
	p.t.Helper()
	resp, err := adminGet(p.t, filepath.Dir(p.cmd.Args[3]), p.admin, "/api/v1/stats")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st stats.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		p.t.Fatal(err)
	}
	return st
}

// freeAddr returns a loopback address for a splicer process to listen on,
// kept from every other socket until the test ends (testutil.ReserveTCP):
// a port only free at the time of the call could be taken by another
// test's socket before the process binds it.
func freeAddr(t testing.TB) string {
	t.Helper()
	return testutil.ReserveTCP(t).String()
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// echoServer is a TCP backend that echoes everything; cleanup closes it.
type echoServer struct {
	ln    net.Listener
	addr  string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func startEcho(t testing.TB) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns[c] = true
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				io.Copy(c, c)
				c.Close()
				e.mu.Lock()
				delete(e.conns, c)
				e.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		for c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

// baseConfig is the [global] and [admin] part of a test config. The admin
// port has one user, "test", with the admin role: its token is in
// dir/token (see adminTokenFile), made on the first call for dir.
func baseConfig(t testing.TB, dir, admin string, shutdown time.Duration) string {
	t.Helper()
	users := filepath.Join(dir, "users")
	if _, err := os.Stat(users); errors.Is(err, os.ErrNotExist) {
		var out, errOut strings.Builder
		if code := run(context.Background(), []string{"user", "add", "-file", users, "test", "admin"}, &out, &errOut); code != exitOK {
			t.Fatalf("user add: %d %s", code, errOut.String())
		}
		writeFile(t, adminTokenFile(dir), out.String())
	}
	return fmt.Sprintf("[global]\nworkers = 2\nshutdown_timeout = %q\nruntime_dir = %q\nstate_file = %q\n\n[admin]\nlisten = %q\nusers_file = %q\n\n",
		shutdown.String(), filepath.Join(dir, "run"), filepath.Join(dir, "state.json"), admin, users)
}

// adminTokenFile is the file holding the admin token of baseConfig(dir).
func adminTokenFile(dir string) string { return filepath.Join(dir, "token") }

// adminClient is a client of the admin port at addr with the admin token
// of baseConfig(dir).
func adminClient(t testing.TB, dir, addr string) *admin.Client {
	t.Helper()
	tok, err := os.ReadFile(adminTokenFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	c, err := admin.NewClientWith(addr, admin.ClientOptions{Token: strings.TrimSpace(string(tok))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// adminGet GETs path from the admin port at addr with the admin token of
// baseConfig(dir).
func adminGet(t testing.TB, dir, addr, path string) (*http.Response, error) {
	t.Helper()
	tok, err := os.ReadFile(adminTokenFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return http.DefaultClient.Do(req)
}

// be is one backend of a test config.
type be struct {
	name, addr string
	weight     int
}

// frontendConfig is one [[frontend]] with extra keys and its backends.
func frontendConfig(name, listen, extra string, backends ...be) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[frontend]]\nname = %q\nlisten = %q\n%s\n", name, listen, extra)
	for _, x := range backends {
		w := x.weight
		if w == 0 {
			w = 1
		}
		fmt.Fprintf(&b, "  [[frontend.backend]]\n  name = %q\n  address = %q\n  weight = %d\n\n", x.name, x.addr, w)
	}
	return b.String()
}
