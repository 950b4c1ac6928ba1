package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

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

// runScheduler probes b every 100 ms (each probe allowed 2 s) with rise 2,
// fall 3 and returns the channel of its transitions.
func runScheduler(t *testing.T, c Checker, b *backend.Backend) (*Scheduler, <-chan bool) {
	t.Helper()
	flips := make(chan bool, 16)
	h := fastHealth(100 * time.Millisecond)
	// A real server's login (SCRAM, a query) can take longer than the
	// interval on a loaded machine under the race detector: a timeout
	// there would be taken for the change a test waits for.
	h.Timeout = 2 * time.Second
	s, err := New(h, c, []*backend.Backend{b},
		func(_ *backend.Backend, up bool, _ Result) int { flips <- up; return 0 }, zerolog.Nop())
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
	testutil.WaitFor(t, 20*time.Second, "backend up with no failure pending", func() bool {
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
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("probe message %q", msg), func() bool {
		st, _ := s.State(b)
		return st.Last.Msg == msg
	})
}

// TestRealPostgres runs the postgres probe against a PostgreSQL started on
// loopback: up when running; down within fall*interval of a smart shutdown
// (a session still open keeps the server refusing new ones with 57P03);
// down when stopped; up again after a restart.
func TestRealPostgres(t *testing.T) {
	// Its bound on the detection (fall × interval + 400 ms, the server's
	// reaction to the signal and a probe's login included) needs the CPU:
	// not beside a flood test in another package.
	testutil.Exclusive(t, "cpu", 5*time.Minute)
	pg := realdb.StartPostgres(t)
	addr := pg.Addr

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
	pg.Signal(syscall.SIGTERM) // smart shutdown: the open session holds it
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
	pg.Wait()
	awaitLast(t, s, b, "postgres probe "+addr.String()+": connect: connection refused")

	pg.Restart(t)
	awaitFlip(t, flips, true)
	awaitLast(t, s, b, upMsg)
	pg.Stop(syscall.SIGINT)
}

// TestRealRedis runs the redis probe against a redis-server started on
// loopback with a password: up with the password, down without it or with
// a wrong one, down when stopped and up again after a restart.
func TestRealRedis(t *testing.T) {
	rs := realdb.StartRedis(t, "--requirepass", "s3cret")
	addr := rs.Addr
	pwFile := filepath.Join(t.TempDir(), "redis.pass")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Setenv("SPLICER_TEST_REDIS_PW", "wrong")
	cases := []struct {
		name string
		h    config.Health
		ok   bool
		msg  string
	}{
		{"password", config.Health{Check: "redis", Password: config.Secret{File: pwFile}}, true, "PONG"},
		{"no password", config.Health{Check: "redis"}, false,
			`reply "-NOAUTH Authentication required.": server needs a password (set health.password)`},
		{"wrong password", config.Health{Check: "redis", Password: config.Secret{Env: "SPLICER_TEST_REDIS_PW"}}, false,
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
		testutil.WaitFor(t, 20*time.Second, tc.name+": "+want, func() bool {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			r := c.Check(ctx, addr)
			return r.OK == tc.ok && r.Msg == want
		})
	}

	b := newBackend(t, addr)
	s, flips := runScheduler(t, good, b)
	awaitLast(t, s, b, "redis probe "+addr.String()+": PONG")
	rs.Stop(syscall.SIGTERM)
	awaitFlip(t, flips, false)
	awaitLast(t, s, b, "redis probe "+addr.String()+": connect: connection refused")
	rs.Start()
	awaitFlip(t, flips, true)
	rs.Stop(syscall.SIGTERM)
}

// mariadbStatus reads the global status variable name through the client,
// logged in as splicer over TCP (a clean session, which counts nowhere).
func mariadbStatus(t *testing.T, db *realdb.MariaDB, name string) int {
	t.Helper()
	out := db.SQLAs(t, "splicer", "", "SHOW GLOBAL STATUS LIKE '"+name+"'")
	fields := strings.Fields(out)
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
	// Passwordless accounts for the probe; 127.0.0.% also covers the
	// relayed sources of the blocking subtest.
	const maxConnectErrors = 10
	db := realdb.StartMariaDB(t, "CREATE USER 'splicer'@'localhost';\nCREATE USER 'splicer'@'127.0.0.%';\n",
		"--max-connect-errors="+strconv.Itoa(maxConnectErrors))
	addr := db.Addr

	probe := func(user string, at netip.AddrPort) Result {
		c, err := NewChecker(config.Health{Check: "mysql", User: user})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return c.Check(ctx, at)
	}
	testutil.WaitFor(t, 20*time.Second, "MariaDB to accept the probe", func() bool { return probe("splicer", addr).OK })
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

	before := mariadbStatus(t, db, "Aborted_connects")
	for i := range 150 {
		if r := probe("splicer", addr); !r.OK {
			t.Fatalf("probe %d: %s", i, r.Msg)
		}
	}
	if after := mariadbStatus(t, db, "Aborted_connects"); after != before {
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
	t.Run("role", func(t *testing.T) { mariadbRoles(t, db, server) })
}

// mariadbRoles: a password account's role follows read_only, toggled on
// the running server, and a wrong password is down with the server's
// refusal. (The account is created here: once an account with a password
// exists, MariaDB answers an unknown user's login with 1045, not 1698.)
func mariadbRoles(t *testing.T, db *realdb.MariaDB, server string) {
	db.SQL(t, "CREATE USER 'role'@'localhost' IDENTIFIED BY 'r0le'; CREATE USER 'role'@'127.0.0.%' IDENTIFIED BY 'r0le'")
	t.Setenv("SPLICER_TEST_MARIADB_PW", "r0le")
	t.Setenv("SPLICER_TEST_MARIADB_BAD", "wrong")
	checker := func(role, env string) Checker {
		c, err := NewChecker(config.Health{Check: "mysql", User: "role", Role: role, Password: config.Secret{Env: env}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	prefix := "mysql probe " + db.Addr.String() + ": "
	primary := checker(config.RolePrimary, "SPLICER_TEST_MARIADB_PW")
	checkResult(t, primary, db.Addr, 0, true, prefix+"server "+server+": primary (read_only=0)")
	checkResult(t, checker(config.RolePrimary, "SPLICER_TEST_MARIADB_BAD"), db.Addr, 0, false,
		prefix+"server "+server+" refused the login: error 1045: Access denied for user 'role'@'localhost' (using password: YES); "+
			"check health.password")

	b := newBackend(t, db.Addr)
	s, flips := runScheduler(t, primary, b)
	settleUp(t, s, b, flips)
	db.SQL(t, "SET GLOBAL read_only = 1")
	awaitFlip(t, flips, false)
	awaitLast(t, s, b, prefix+"replica (read_only=1), want primary")
	checkResult(t, checker(config.RoleReplica, "SPLICER_TEST_MARIADB_PW"), db.Addr, 0, true, prefix+"server "+server+": replica (read_only=1)")
	db.SQL(t, "SET GLOBAL read_only = 0")
	awaitFlip(t, flips, true)
	awaitLast(t, s, b, prefix+"server "+server+": primary (read_only=0)")
}
