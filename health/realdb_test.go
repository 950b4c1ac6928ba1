package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
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

// openPgSession opens a trusted session and reads to ReadyForQuery; the session
// stays open until the returned conn is closed.
func openPgSession(t *testing.T, addr netip.AddrPort) net.Conn {
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

// settleUp waits until b is up with no failure pending, then discards the
// transitions queued so far: on a loaded machine a slow probe can flap the
// backend before the part of a test that counts transitions.
func settleUp(t *testing.T, s *Scheduler, b *backend.Backend, flips <-chan bool) {
	t.Helper()
	waitFor(t, "backend up with no failure pending", func() bool {
		st, _ := s.State(b)
		return st.Up && st.Failures == 0
	})
	for {
		select {
		case <-flips:
		default:
			return
		}
	}
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
	settleUp(t, s, b, flips)

	session := openPgSession(t, addr)
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

// lookFirst returns the path of the first of names that exists, looked up
// on PATH unless it is a path; "" when none does.
func lookFirst(names ...string) string {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// mariadbBinaries returns the MariaDB server, its install script and its
// client, or skips the test. Older packages name them after MySQL; the
// server lives in /usr/sbin, which not every user has on PATH.
func mariadbBinaries(t *testing.T) (server, install, client string) {
	t.Helper()
	server = lookFirst("mariadbd", "mysqld", "/usr/sbin/mariadbd", "/usr/sbin/mysqld")
	install = lookFirst("mariadb-install-db", "mysql_install_db")
	client = lookFirst("mariadb", "mysql")
	if server == "" || install == "" || client == "" {
		t.Skip("install MariaDB (Debian package mariadb-server) to run this test")
	}
	return server, install, client
}

// mariadbStatus reads the global status variable name through the client,
// logged in as splicer over TCP (a clean session, which counts nowhere).
func mariadbStatus(t *testing.T, client string, addr netip.AddrPort, name string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, client, "--no-defaults", "--protocol=tcp",
		"--host="+addr.Addr().String(), "--port="+strconv.Itoa(int(addr.Port())), "--user=splicer",
		"--batch", "--skip-column-names", "--execute=SHOW GLOBAL STATUS LIKE '"+name+"'").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", client, err, out)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 || fields[0] != name {
		t.Fatalf("status %s: got %q", name, out)
	}
	n, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("status %s: %v", name, err)
	}
	return n
}

// mysqlGreet reads the greeting at addr and hangs up, as the probe did
// before it learnt to log in, and returns the greeting's payload.
func mysqlGreet(t *testing.T, addr netip.AddrPort) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, release, err := dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	payload, err := mysqlReadPacket(ctx, conn, "greeting", 0)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// relayFrom returns a loopback address whose connections are relayed to
// to from the source address from, as through a balancer on another host:
// MySQL and MariaDB exempt 127.0.0.1 alone from host blocking. A half
// close passes through, so a hang-up reaches the server as the client's.
func relayFrom(t *testing.T, from netip.Addr, to netip.AddrPort) netip.AddrPort {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 10 * time.Second}
	return serve(t, func(c net.Conn) {
		up, err := d.Dial("tcp", to.String())
		if err != nil {
			t.Errorf("relay from %s: %v", from, err)
			return
		}
		defer up.Close()
		done := make(chan struct{})
		go relayUp(up.(*net.TCPConn), c, done)
		_, _ = io.Copy(c, up)
		_ = c.(*net.TCPConn).CloseWrite()
		<-done
	})
}

// relayUp copies the client's bytes to the server, then passes on its FIN,
// and closes done.
func relayUp(up *net.TCPConn, c net.Conn, done chan<- struct{}) {
	defer close(done)
	_, _ = io.Copy(up, c)
	_ = up.CloseWrite()
}

// TestRealMariaDB runs the mysql probe against a MariaDB started on
// loopback with real authentication and max_connect_errors=10: up for a
// passwordless account and for an unknown user (refused, so alive); 150
// probes in a row add nothing to Aborted_connects, where each hang-up
// after the greeting adds one (the handshake errors max_connect_errors
// counts), and leave the backend up. The blocking subtest shows the
// blocking itself from an address that is not exempt.
func TestRealMariaDB(t *testing.T) {
	serverBin, install, client := mariadbBinaries(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	var asRoot []string // MariaDB runs as root only when told to
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	installDB := exec.CommandContext(ctx, install, append([]string{"--no-defaults", "--datadir=" + data,
		"--skip-test-db", "--auth-root-authentication-method=socket", "--innodb-log-file-size=4M"}, asRoot...)...)
	if out, err := installDB.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", install, err, out)
	}
	// Passwordless accounts for the probe; 127.0.0.% also covers the
	// relayed sources of the blocking subtest.
	initFile := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(initFile, []byte("CREATE USER 'splicer'@'localhost';\nCREATE USER 'splicer'@'127.0.0.%';\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const maxConnectErrors = 10
	addr := closedPort(t, "tcp")
	db := &server{t: t, name: serverBin, args: append([]string{"--no-defaults", "--datadir=" + data,
		"--bind-address=127.0.0.1", "--port=" + strconv.Itoa(int(addr.Port())),
		"--socket=" + filepath.Join(dir, "mysqld.sock"), "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--init-file=" + initFile, "--max-connect-errors=" + strconv.Itoa(maxConnectErrors),
		"--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M"}, asRoot...)}
	db.start()

	probe := func(user string, at netip.AddrPort) Result {
		c, err := NewChecker(config.Health{Check: "mysql", User: user})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return c.Check(ctx, at)
	}
	waitFor(t, "MariaDB to accept the probe", func() bool { return probe("splicer", addr).OK })
	hello, err := mysqlGreeting(mysqlGreet(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	server := strconv.Quote(string(hello.version))
	upMsg := func(at netip.AddrPort) string {
		return "mysql probe " + at.String() + ": server " + server + `: login as "splicer" succeeded`
	}
	for _, tc := range []struct {
		user, msg string
	}{
		{"splicer", upMsg(addr)},
		{"nobody", "mysql probe " + addr.String() + ": server " + server + ` answers sessions: error 1698: ` +
			`Access denied for user 'nobody'@'localhost'; create user "nobody" without a password for the probe`},
	} {
		if r := probe(tc.user, addr); !r.OK || r.Msg != tc.msg {
			t.Errorf("probe as %s: OK %v, %q\nwant OK true, %q", tc.user, r.OK, r.Msg, tc.msg)
		}
	}

	before := mariadbStatus(t, client, addr, "Aborted_connects")
	for i := range 150 {
		if r := probe("splicer", addr); !r.OK {
			t.Fatalf("probe %d: %s", i, r.Msg)
		}
	}
	if after := mariadbStatus(t, client, addr, "Aborted_connects"); after != before {
		t.Errorf("150 probes took Aborted_connects from %d to %d: they ended handshakes uncleanly", before, after)
	}
	if r := probe("splicer", addr); !r.OK || r.Msg != upMsg(addr) {
		t.Errorf("probe after 150: OK %v, %q\nwant OK true, %q", r.OK, r.Msg, upMsg(addr))
	}

	t.Run("blocking", func(t *testing.T) {
		// The control hangs up after the greeting until MariaDB blocks
		// its address. The server records a hang-up once it reads the
		// EOF, possibly after the next connection began: hence the slack.
		control := netip.MustParseAddr("127.0.0.3")
		controlAt := relayFrom(t, control, addr)
		blocked := false
		for range 3 * maxConnectErrors {
			start := time.Now()
			greeting := mysqlGreet(t, controlAt)
			if d := time.Since(start); d > time.Second {
				t.Skipf("a greeting to %s took %v: reverse DNS is slow here, which would make 150 probes slow", control, d)
			}
			if greeting[0] == mysqlErrPacket {
				if code, msg, err := mysqlParseError(greeting); err != nil || code != 1129 {
					t.Fatalf("control greeting: error %d %q (%v), want 1129 host blocked", code, msg, err)
				}
				blocked = true
				break
			}
		}
		if !blocked {
			t.Skipf("MariaDB did not block %s after %d hang-ups: no permanent reverse DNS answer for it here, so blocking cannot be shown",
				control, 3*maxConnectErrors)
		}
		at := relayFrom(t, netip.MustParseAddr("127.0.0.2"), addr)
		for i := range 150 {
			if r := probe("splicer", at); !r.OK {
				t.Fatalf("probe %d from 127.0.0.2: %s", i, r.Msg)
			}
		}
		if r := probe("splicer", at); !r.OK || r.Msg != upMsg(at) {
			t.Errorf("probe from 127.0.0.2 after 150: OK %v, %q\nwant OK true, %q", r.OK, r.Msg, upMsg(at))
		}
	})
}
