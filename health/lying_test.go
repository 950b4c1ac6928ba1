package health

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
)

// The tests of this file hold the PostgreSQL and MySQL probes to the
// servers a balancer meets that the real servers here are not set up to
// be: authentication methods asked for out of turn or without the
// password they need, and replies that lie about their own framing. Each
// is refused with the exact message an operator reads in the probe's
// last result.

// TestPostgresLoginLies: every authentication request and login message
// a server sends out of turn, malformed, or without the probe holding the
// password it needs, is refused with a message naming it.
func TestPostgresLoginLies(t *testing.T) {
	t.Setenv("SPLICER_TEST_PG_PW", "pencil")
	withPassword := config.Health{Check: "postgres", User: "splicer", Database: "app", Role: config.RolePrimary,
		Password: config.Secret{Env: "SPLICER_TEST_PG_PW"}}
	noPassword := config.Health{Check: "postgres", User: "splicer", Database: "app", Role: config.RolePrimary}
	loginOnly := config.Health{Check: "postgres", User: "splicer", Database: "app"}
	script := func(steps ...pgStep) func(net.Conn) {
		return fakePgScript(t, append([]pgStep{pgRead(0, nil)}, steps...), nil)
	}
	scramRequest := pgAuth(10, "SCRAM-SHA-256\x00\x00")
	runProbeCases(t, []probeCase{
		{name: "authentication message too short", health: withPassword,
			server: script(pgSend(pgMessage('R', []byte{0, 0}))), ok: false,
			msg: "postgres probe %s: malformed reply: authentication message of 2 bytes"},
		{name: "cleartext password not set", health: noPassword,
			server: script(pgSend(pgAuth(3, ""))), ok: false,
			msg: "postgres probe %s: server asks for a cleartext password: set health.password"},
		{name: "second SASL request", health: withPassword,
			server: script(pgSend(scramRequest), pgRead('p', nil), pgSend(scramRequest)), ok: false,
			msg: "postgres probe %s: malformed reply: second SASL request"},
		{name: "unterminated SASL mechanism", health: withPassword,
			server: script(pgSend(pgAuth(10, "SCRAM-SHA-256"))), ok: false,
			msg: "postgres probe %s: malformed reply: unterminated SASL mechanism"},
		{name: "SASLContinue without SASL", health: withPassword,
			server: script(pgSend(pgAuth(11, "r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))), ok: false,
			msg: "postgres probe %s: malformed reply: SASLContinue out of turn"},
		{name: "SASLFinal without SASL", health: withPassword,
			server: script(pgSend(pgAuth(12, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))), ok: false,
			msg: "postgres probe %s: malformed reply: SASLFinal out of turn"},
		{name: "BackendKeyData before AuthenticationOk", health: noPassword,
			server: script(pgSend(pgMessage('K', make([]byte, 8)))), ok: false,
			msg: "postgres probe %s: malformed reply: BackendKeyData before AuthenticationOk"},
		{name: "error without its terminator", health: noPassword,
			server: script(pgSend(pgMessage('E', []byte("SFATAL\x00C57P03\x00")))), ok: false,
			msg: "postgres probe %s: malformed reply: unterminated error fields"},
		// Servers before 9.6 send no V field: the localized S stands in.
		{name: "severity of a server before 9.6", health: loginOnly,
			server: script(pgSend(pgMessage('E', []byte("SFATAL\x00C57P03\x00Mthe database system is shutting down\x00\x00")))), ok: false,
			msg: "postgres probe %s: server error 57P03 (FATAL): the database system is shutting down"},
	})
}

// TestPostgresQueryLies: the role query's answer is read to its end and
// its row checked column by column.
func TestPostgresQueryLies(t *testing.T) {
	h := config.Health{Check: "postgres", User: "splicer", Database: "app", Role: config.RolePrimary}
	script := func(answer string) func(net.Conn) {
		return fakePgScript(t, []pgStep{pgRead(0, nil), pgSend(pgLoggedIn("")), pgRead('Q', wantQuery), pgSend(answer)}, nil)
	}
	row := func(cols ...string) string { return pgMessage('T', []byte{0, 0}) + pgRow(cols...) }
	end := pgMessage('C', []byte("SELECT 1\x00")) + pgReady
	runProbeCases(t, []probeCase{
		// A second row is read past (the session stays in step) and the
		// first one counts.
		{name: "two rows", health: h,
			server: script(row("f", "000000030000000000000005", "NULL", "f", "NULL") +
				pgRow("t", "NULL", "t", "t", "1") + end), ok: true,
			msg: "postgres probe %s: primary, timeline 3"},
		{name: "pg_is_in_recovery NULL", health: h,
			server: script(row("NULL", "NULL", "NULL", "f", "NULL") + end), ok: false,
			msg: "postgres probe %s: malformed reply: pg_is_in_recovery() is NULL"},
		{name: "primary without a WAL file", health: h,
			server: script(row("f", "NULL", "NULL", "f", "NULL") + end), ok: false,
			msg: "postgres probe %s: malformed reply: WAL file name NULL"},
		{name: "row cut short", health: h,
			server: script(pgMessage('D', []byte{0, 5, 0, 0}) + end), ok: false,
			msg: "postgres probe %s: malformed reply: data row cut in column 0"},
		{name: "endless answer", health: h,
			server: script(strings.Repeat(pgMessage('N', []byte("SNOTICE\x00C00000\x00Mx\x00\x00")), pgMaxQueryMessages)), ok: false,
			msg: "postgres probe %s: malformed reply: more than 32 messages in a query's answer"},
	})
}

// TestPostgresSCRAMLies: the SCRAM messages a server sends are parsed
// strictly, and each defect is named.
func TestPostgresSCRAMLies(t *testing.T) {
	t.Setenv("SPLICER_TEST_PG_PW", "pencil")
	h := config.Health{Check: "postgres", User: "splicer", Database: "app", Role: config.RolePrimary,
		Password: config.Secret{Env: "SPLICER_TEST_PG_PW"}}
	first := func(format string) func(string) string {
		return func(nonce string) string { return strings.ReplaceAll(format, "NONCE", nonce+"srv") }
	}
	good := first("r=NONCE,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	runProbeCases(t, []probeCase{
		{name: "salt not base64", health: h, server: scramServer(t, first("r=NONCE,s=!!,i=4096"), "", ""), ok: false,
			msg: "postgres probe %s: malformed reply: SCRAM salt is not base64"},
		{name: "iteration count not a number", health: h, server: scramServer(t, first("r=NONCE,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=many"), "", ""), ok: false,
			msg: `postgres probe %s: malformed reply: SCRAM iteration count "many"`},
		{name: "iteration count zero", health: h, server: scramServer(t, first("r=NONCE,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0"), "", ""), ok: false,
			msg: `postgres probe %s: malformed reply: SCRAM iteration count "0"`},
		{name: "attribute without a value", health: h,
			server: scramServer(t, func(string) string { return "r" }, "", ""), ok: false,
			msg: `postgres probe %s: malformed reply: SCRAM message "r"`},
		{name: "attributes out of order", health: h,
			server: scramServer(t, func(string) string { return "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=x,i=4096" }, "", ""), ok: false,
			msg: `postgres probe %s: malformed reply: SCRAM message "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=x,i=4096" lacks 'r'`},
		{name: "attributes missing", health: h,
			server: scramServer(t, func(string) string { return "r=x" }, "", ""), ok: false,
			msg: `postgres probe %s: malformed reply: SCRAM message "r=x" lacks "si"`},
		{name: "final message without a signature", health: h, server: scramServer(t, good, "x=1", ""), ok: false,
			msg: `postgres probe %s: malformed reply: SCRAM message "x=1" lacks 'v'`},
		{name: "signature not base64", health: h, server: scramServer(t, good, "v=!!", ""), ok: false,
			msg: "postgres probe %s: malformed reply: SCRAM server signature is not base64"},
	})
}

// mysqlThenClose greets with greeting, answers each packet the probe sends
// with the next of replies and then closes: having read everything the
// probe sent, the probe reads EOF, never a reset.
func mysqlThenClose(greeting string, replies ...string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.WriteString(c, mysqlPacket(0, greeting)); err != nil {
			return
		}
		for _, reply := range replies {
			if _, err := readMySQLPacket(c); err != nil {
				return
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
	}
}

// mysqlColumns is the start of a result set of n columns, up to the EOF
// after their definitions.
func mysqlColumns(n int) string {
	s := mysqlPacket(1, string([]byte{byte(n)}))
	for i := range n {
		s += mysqlPacket(byte(2+i), "\x03def\x00\x00\x00\x01v\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x80\x00\x00\x00\x00")
	}
	return s + mysqlPacket(byte(2+n), "\xfe\x00\x00\x02\x00")
}

// TestMySQLReplyLies: a MySQL server whose auth switch or result set does
// not hold together is refused with a message naming the defect; one that
// hangs up mid-answer is down with the read that failed; length-encoded
// integers of every width are read.
func TestMySQLReplyLies(t *testing.T) {
	role := config.Health{Check: "mysql", User: "splicer", Role: config.RolePrimary}
	ok := mysqlOKReply
	eof := "\xfe\x00\x00\x02\x00"
	// A row of read_only and super_read_only, each "0", from sequence 4
	// (after two column definitions and their EOF).
	rows := func(payloads ...string) string {
		s := ""
		for i, p := range payloads {
			s += mysqlPacket(byte(5+i), p)
		}
		return s
	}
	runProbeCases(t, []probeCase{
		{name: "auth switch without a plugin name", health: config.Health{Check: "mysql", User: "splicer"},
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlPacket(2, "\xfecaching_sha2_password")}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: auth switch without a plugin name"},
		{name: "OK instead of a result set", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{ok, mysqlPacket(1, "\x00\x00\x00\x02\x00\x00\x00")}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: query returned no result set"},
		{name: "EOF among the column definitions", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{ok, mysqlPacket(1, "\x02") + mysqlPacket(2, eof)}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: result ended among its column definitions"},
		{name: "column count cut short", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{ok, mysqlPacket(1, "\xfc\x02")}, nil), ok: false,
			msg: `mysql probe %s: malformed reply: result of "\xfc\x02" columns, want 2`},
		{name: "row cut at a column", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{ok, mysqlColumns(2) + rows("\x010", eof)}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: row cut at column 1"},
		{name: "endless rows", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{ok, mysqlColumns(2) + rows(strings.Split(strings.Repeat("\x010\x010,", mysqlMaxRows), ",")[:mysqlMaxRows]...)}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: more than 16 rows"},
		{name: "closed before the result", health: role,
			server: mysqlThenClose(mysqlGreetingPlugin, ok, ""), ok: false,
			msg: "mysql probe %s: read: EOF"},
		{name: "closed before the row", health: role,
			server: mysqlThenClose(mysqlGreetingPlugin, ok, mysqlColumns(2)), ok: false,
			msg: "mysql probe %s: read: EOF"},
		// Every width of length-encoded integer: a column count in two
		// bytes, values in three and eight.
		{name: "wide length encodings", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{ok, mysqlPacket(1, "\xfc\x02\x00") + mysqlColumns(2)[5:] +
				rows("\xfd\x01\x00\x000"+"\xfe\x01\x00\x00\x00\x00\x00\x00\x000", eof)}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": primary (read_only=0)`},
		{name: "value longer than its row", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{ok, mysqlColumns(2) + rows("\xfc\x10\x000\x010", eof)}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: row column 0"},
	})
}

// TestMySQLNativeSwitchSends: a server that switches the probe to
// mysql_native_password with a fresh scramble gets the answer to that
// scramble, not to the greeting's.
func TestMySQLNativeSwitchSends(t *testing.T) {
	t.Setenv("SPLICER_TEST_MYSQL_PW", "s3cret")
	h := config.Health{Check: "mysql", User: "splicer", Password: config.Secret{Env: "SPLICER_TEST_MYSQL_PW"}}
	fresh := "ABCDEFGHIJKLMNOPQRST"
	sent := make(chan []byte, 1)
	addr := serve(t, fakeMySQL(mysqlGreetingPlugin, []string{mysqlPacket(2, "\xfemysql_native_password\x00"+fresh+"\x00"), mysqlOKAfterAuth}, sent))
	c, err := NewChecker(h)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, c, addr, 0, true, "mysql probe "+addr.String()+`: server "8.0.36": login as "splicer" succeeded`)
	want := loginWith(nativeAnswer("s3cret", mysqlTestScramble)) + mysqlPacket(3, nativeAnswer("s3cret", fresh)) + "\x01\x00\x00\x00\x01"
	if got := string(<-sent); got != want {
		t.Fatalf("probe sent %q\nwant %q", got, want)
	}
}

// TestMySQLLenEnc pins the decoding of length-encoded integers, which the
// probe reads column counts and values with.
func TestMySQLLenEnc(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    uint64
		rest string
		ok   bool
	}{
		{"\x05ab", 5, "ab", true},
		{"\xfc\x34\x12x", 0x1234, "x", true},
		{"\xfd\x56\x34\x12", 0x123456, "", true},
		{"\xfe\x08\x07\x06\x05\x04\x03\x02\x01", 0x0102030405060708, "", true},
		{"\xfc\x34", 0, "", false},
		{"\xfe\x08\x07\x06\x05\x04\x03\x02", 0, "", false},
		{"\xfb", 0, "", false},
		{"\xff", 0, "", false},
	} {
		n, rest, ok := mysqlLenEnc([]byte(tc.in))
		if n != tc.n || string(rest) != tc.rest || ok != tc.ok {
			t.Errorf("mysqlLenEnc(%q) = %#x, %q, %v; want %#x, %q, %v", tc.in, n, rest, ok, tc.n, tc.rest, tc.ok)
		}
	}
}

// TestTCPProbeIPv6: an IPv6 backend is probed through the probe's own
// socket, a zoned one (fe80::1%eth0, here ::1%lo) through the dialer that
// resolves its zone; both tell a listener from a refusal.
func TestTCPProbeIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	listening := netip.MustParseAddrPort(ln.Addr().String())
	// A bound socket that does not listen: its port refuses, and stays
	// this test's while it runs.
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	refused := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(sa.(*unix.SockaddrInet6).Port))
	zoned := func(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().WithZone("lo"), a.Port()) }
	c, err := NewChecker(config.Health{Check: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr netip.AddrPort
		ok   bool
		msg  string
	}{
		{listening, true, "connected"},
		{refused, false, "connect: connection refused"},
		{zoned(listening), true, "connected"},
		{zoned(refused), false, "connect: connection refused"},
	} {
		checkResult(t, c, tc.addr, 0, tc.ok, "tcp probe "+tc.addr.String()+": "+tc.msg)
	}
}

// TestMySQLShortErrors: an ERR packet too short to carry a code, in
// answer to the role query or in place of its row, is malformed, not a
// server error with a made-up code.
func TestMySQLShortErrors(t *testing.T) {
	role := config.Health{Check: "mysql", User: "splicer", Role: config.RolePrimary}
	runProbeCases(t, []probeCase{
		{name: "in place of the result", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlPacket(1, "\xff\x15")}, nil), ok: false,
			msg: "mysql probe %s: malformed error packet of 2 bytes"},
		{name: "in place of the row", health: role,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlColumns(2) + mysqlPacket(5, "\xff")}, nil), ok: false,
			msg: "mysql probe %s: malformed error packet of 1 bytes"},
	})
}

// TestRedisRoleLies: ROLE and INFO replies of the wrong shape, and a
// master that cannot say its own offset, are refused with what was read.
func TestRedisRoleLies(t *testing.T) {
	loading := serve(t, fakeRedisServer(nil, map[string]string{"ROLE": "-LOADING Redis is loading the dataset in memory\r\n"}))
	h := func(role string, maxLag int) config.Health {
		return config.Health{Check: "redis", Role: role, MaxLagBytes: maxLag}
	}
	runProbeCases(t, []probeCase{
		{name: "INFO not a bulk string", health: h(config.RolePrimary, 0),
			server: fakeRedisServer(nil, map[string]string{"INFO replication": ":1\r\n"}), ok: false,
			msg: `redis probe %s: INFO replication reply "1": unexpected reply`},
		{name: "replica ROLE of the wrong shape", health: h(config.RoleReplica, 0),
			server: fakeRedisServer(nil, map[string]string{"ROLE": "*3\r\n$5\r\nslave\r\n$8\r\n10.0.0.1\r\n$4\r\n6379\r\n"}), ok: false,
			msg: `redis probe %s: malformed reply: ROLE "[slave 10.0.0.1 6379]"`},
		{name: "unknown role", health: h(config.RoleAny, 0),
			server: fakeRedisServer(nil, map[string]string{"ROLE": "*1\r\n$7\r\nwatcher\r\n"}), ok: false,
			msg: `redis probe %s: ROLE answers "watcher"`},
		{name: "master loading", health: h(config.RoleReplica, 64),
			server: fakeRedisServer(nil, map[string]string{"ROLE": redisReplicaOf(loading, "connected", 10)}), ok: false,
			msg: "redis probe %s: replica of " + loading.String() + " (connected): lag unknown: master " + loading.String() +
				`: ROLE reply "-LOADING Redis is loading the dataset in memory": server loading`},
	})
}

// TestSendExpectEnds: a reply that diverges from the expected prefix
// fails at its first byte, without waiting for the rest; one that never
// matches a regexp ends at the 64 KiB reply limit.
func TestSendExpectEnds(t *testing.T) {
	ping := config.Health{Check: "send_expect", Send: "PING\r\n", Expect: "+PONG"}
	regex := config.Health{Check: "send_expect", Send: "PING\r\n", ExpectRegex: `^\+PONG`}
	runProbeCases(t, []probeCase{
		// The server never closes: only the divergence can end the probe
		// before its timeout.
		{name: "diverges at the first byte", health: ping, server: replyAfter(6, "-"), timeout: time.Minute, ok: false,
			msg: `send_expect probe %s: reply "-" does not start with "+PONG"`},
		{name: "reply limit", health: regex, server: replyAfter(6, strings.Repeat("x", maxReply+10)), ok: false,
			msg: `send_expect probe %s: reply "` + strings.Repeat("x", 64) + `"... does not match /^\+PONG/ (reply limit reached)`},
	})
}

// TestHTTPInterimFlood: a server answering with interim responses only is
// down after maxInterim of them.
func TestHTTPInterimFlood(t *testing.T) {
	addr := serve(t, afterHTTPRequest(strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", maxInterim+1)))
	c, err := NewChecker(config.Health{Check: "http", Path: "/", Status: 200})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, c, addr, 0, false, "http probe "+addr.String()+": GET /: more than 4 interim responses")
}

// TestNewCheckerRejectsPath: a health.path that is no URL path is refused
// with the parser's reason.
func TestNewCheckerRejectsPath(t *testing.T) {
	c, err := NewChecker(config.Health{Check: "http", Path: "/%zz", Status: 200})
	if want := `health.path "/%zz": parse "/%zz": invalid URL escape "%zz": invalid health check`; c != nil || err == nil || err.Error() != want {
		t.Fatalf("NewChecker = %v, %v; want %q", c, err, want)
	}
}
