package health

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// server is a database server process started by a test.
type server struct {
	t    *testing.T
	name string
	args []string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan error
}

// start runs the server; the test's cleanup kills it if it still runs.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.name, s.args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	if testing.Verbose() {
		s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.name, err)
	}
	done := make(chan error, 1)
	s.done = done
	go func() { done <- s.cmd.Wait() }()
	s.t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.stop(syscall.SIGKILL)
		}
	})
}

// signal sends sig to the server without waiting.
func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %s: %v", s.name, err)
	}
}

// stop sends sig and waits for the server to exit.
func (s *server) stop(sig syscall.Signal) {
	s.t.Helper()
	_ = s.cmd.Process.Signal(sig)
	s.wait()
}

// wait waits for the server to exit.
func (s *server) wait() {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Fatalf("%s did not exit", s.name)
	}
}

// postgresBinaries returns the bin directory of an installed PostgreSQL, or
// skips the test.
func postgresBinaries(t *testing.T) string {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	for i := len(found) - 1; i >= 0; i-- { // the newest version sorts last
		dir := filepath.Dir(found[i])
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir
		}
	}
	t.Skip("install postgresql (Debian package postgresql) to run this test")
	return ""
}

// postgresCredential returns who runs PostgreSQL, which refuses to run as
// root: nil (this process's user) unless the test runs as root, then the
// Debian "postgres" account.
func postgresCredential(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("running as root without a postgres account (%v): PostgreSQL refuses to run as root", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// ownedTempDir is a temporary directory owned by cred's user.
func ownedTempDir(t *testing.T, cred *syscall.Credential) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "splicer-health-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// pgSession opens a trusted session and reads to ReadyForQuery; the session
// stays open until the returned conn is closed.
func pgSession(t *testing.T, addr netip.AddrPort) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(pgStartup("splicer", "postgres")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for {
		typ, body, err := pgReadMessage(t.Context(), r)
		if err != nil {
			t.Fatalf("session: %v", err)
		}
		if typ == 'E' {
			t.Fatalf("session refused: %q", body)
		}
		if typ == 'Z' {
			return c
		}
	}
}

// runScheduler probes b every 100 ms with rise 2, fall 3 and returns the
// channel of its transitions.
func runScheduler(t *testing.T, c Checker, b *backend.Backend) (*Scheduler, <-chan bool) {
	t.Helper()
	flips := make(chan bool, 16)
	s, err := New(fastHealth(100*time.Millisecond), c, []*backend.Backend{b},
		func(_ *backend.Backend, up bool, _ Result) { flips <- up }, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	return s, flips
}

// awaitFlip waits for the next transition and checks its direction; it
// returns when it came.
func awaitFlip(t *testing.T, flips <-chan bool, up bool) time.Time {
	t.Helper()
	select {
	case got := <-flips:
		if got != up {
			t.Fatalf("transition up=%v, want up=%v", got, up)
		}
		return time.Now()
	case <-time.After(30 * time.Second):
		t.Fatalf("no transition to up=%v", up)
	}
	return time.Time{}
}

// awaitLast waits until b's latest probe message is msg.
func awaitLast(t *testing.T, s *Scheduler, b *backend.Backend, msg string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("probe message %q", msg), func() bool {
		st, _ := s.State(b)
		return st.Last.Msg == msg
	})
}

// TestRealPostgres runs the postgres probe against a PostgreSQL started on
// loopback: up when running; down within fall*interval of a smart shutdown
// (a session still open keeps the server refusing new ones with 57P03);
// down when stopped; up again after a restart.
func TestRealPostgres(t *testing.T) {
	bin := postgresBinaries(t)
	cred := postgresCredential(t)
	dir := ownedTempDir(t, cred)
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "splicer", "--auth=trust", "--no-sync", "-E", "UTF8")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	addr := closedPort(t, "tcp")
	pg := &server{t: t, name: filepath.Join(bin, "postgres"), cred: cred, args: []string{
		"-D", data, "-p", strconv.Itoa(int(addr.Port())), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_buffers=16MB",
	}}
	pg.start()

	c, err := NewChecker(config.Health{Check: "postgres", User: "splicer", Database: "postgres"})
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, addr)
	s, flips := runScheduler(t, c, b)
	upMsg := "postgres probe " + addr.String() + ": authentication ok"
	awaitLast(t, s, b, upMsg)

	session := pgSession(t, addr)
	defer session.Close()
	pg.signal(syscall.SIGTERM) // smart shutdown: the open session holds it
	sent := time.Now()
	down := awaitFlip(t, flips, false)
	const bound = 3*100*time.Millisecond + 400*time.Millisecond // fall*interval + margin
	t.Logf("smart shutdown detected in %v", down.Sub(sent))
	if down.Sub(sent) > bound {
		t.Errorf("smart shutdown detected in %v, want at most %v", down.Sub(sent), bound)
	}
	st, _ := s.State(b)
	if want := "postgres probe " + addr.String() + ": server error 57P03 (FATAL): the database system is shutting down"; st.Last.Msg != want {
		t.Fatalf("probe during smart shutdown: %q, want %q", st.Last.Msg, want)
	}

	session.Close()
	pg.wait()
	awaitLast(t, s, b, "postgres probe "+addr.String()+": connect: connection refused")

	pg.start()
	awaitFlip(t, flips, true)
	awaitLast(t, s, b, upMsg)
	pg.stop(syscall.SIGINT)
}

// TestRealRedis runs the redis probe against a redis-server started on
// loopback with a password: up with the password, down without it or with
// a wrong one, down when stopped and up again after a restart.
func TestRealRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("install redis-server (Debian package redis-server) to run this test")
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "redis.pass")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := closedPort(t, "tcp")
	rs := &server{t: t, name: bin, args: []string{
		"--port", strconv.Itoa(int(addr.Port())), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--requirepass", "s3cret",
	}}
	rs.start()

	t.Setenv("SPLICER_TEST_REDIS_PW", "wrong")
	cases := []struct {
		name string
		h    config.Health
		ok   bool
		msg  string
	}{
		{"password", config.Health{Check: "redis", PasswordFile: pwFile}, true, "PONG"},
		{"no password", config.Health{Check: "redis"}, false,
			`reply "-NOAUTH Authentication required.": server needs a password (set health.password_file or health.password_env)`},
		{"wrong password", config.Health{Check: "redis", PasswordEnv: "SPLICER_TEST_REDIS_PW"}, false,
			`AUTH reply "-WRONGPASS invalid username-password pair or user is disabled.": password rejected`},
	}
	var good Checker
	for _, tc := range cases {
		c, err := NewChecker(tc.h)
		if err != nil {
			t.Fatal(err)
		}
		if tc.ok {
			good = c
		}
		want := "redis probe " + addr.String() + ": " + tc.msg
		waitFor(t, tc.name+": "+want, func() bool {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			r := c.Check(ctx, addr)
			return r.OK == tc.ok && r.Msg == want
		})
	}

	b := newBackend(t, addr)
	s, flips := runScheduler(t, good, b)
	awaitLast(t, s, b, "redis probe "+addr.String()+": PONG")
	rs.stop(syscall.SIGTERM)
	awaitFlip(t, flips, false)
	awaitLast(t, s, b, "redis probe "+addr.String()+": connect: connection refused")
	rs.start()
	awaitFlip(t, flips, true)
	rs.stop(syscall.SIGTERM)
}
