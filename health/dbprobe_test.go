package health

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
)

// pgMessage frames a backend message.
func pgMessage(typ byte, body []byte) string {
	return string(append(binary.BigEndian.AppendUint32([]byte{typ}, uint32(4+len(body))), body...))
}

// pgError builds an ErrorResponse with severity, SQLSTATE and message.
func pgError(severity, code, msg string) string {
	body := "S" + severity + "\x00V" + severity + "\x00C" + code + "\x00M" + msg + "\x00\x00"
	return pgMessage('E', []byte(body))
}

// pgAuth builds an authentication request with the given code and payload.
func pgAuth(code uint32, payload string) string {
	return pgMessage('R', append(binary.BigEndian.AppendUint32(nil, code), payload...))
}

// fakePostgres reads a StartupMessage, checks it is the one the probe must
// send, answers reply and waits for the client to hang up. seen receives
// the bytes after the reply (a Terminate, for trusted sessions).
func fakePostgres(t *testing.T, reply string, seen chan<- []byte) func(net.Conn) {
	want := pgStartup("splicer", "app")
	return func(c net.Conn) {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Errorf("read startup: %v", err)
			return
		}
		if !bytes.Equal(got, want) {
			t.Errorf("startup message %q, want %q", got, want)
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
		rest, _ := io.ReadAll(c)
		if seen != nil {
			seen <- rest
		}
	}
}

func TestPgStartup(t *testing.T) {
	want := "\x00\x00\x00\x43\x00\x03\x00\x00" +
		"user\x00splicer\x00database\x00app\x00application_name\x00splicer-health\x00\x00"
	if got := string(pgStartup("splicer", "app")); got != want {
		t.Fatalf("pgStartup = %q\nwant %q", got, want)
	}
	noDB := "\x00\x00\x00\x30\x00\x03\x00\x00user\x00u\x00application_name\x00splicer-health\x00\x00"
	if got := string(pgStartup("u", "")); got != noDB {
		t.Fatalf("pgStartup without database = %q\nwant %q", got, noDB)
	}
}

func TestPostgresProbe(t *testing.T) {
	h := config.Health{Check: "postgres", User: "splicer", Database: "app"}
	notice := pgMessage('N', []byte("SNOTICE\x00Cxx000\x00Mhello\x00\x00"))
	runProbeCases(t, []probeCase{
		{name: "md5 request", health: h, server: fakePostgres(t, pgAuth(5, "salt"), nil), ok: true,
			msg: "postgres probe %s: authentication md5 password"},
		{name: "sasl request", health: h, server: fakePostgres(t, pgAuth(10, "SCRAM-SHA-256\x00\x00"), nil), ok: true,
			msg: "postgres probe %s: authentication sasl"},
		{name: "unknown method", health: h, server: fakePostgres(t, pgAuth(42, ""), nil), ok: true,
			msg: "postgres probe %s: authentication method 42"},
		{name: "notice first", health: h, server: fakePostgres(t, notice+pgAuth(3, ""), nil), ok: true,
			msg: "postgres probe %s: authentication cleartext password"},
		{name: "password failed", health: h,
			server: fakePostgres(t, pgError("FATAL", "28P01", `password authentication failed for user "splicer"`), nil), ok: true,
			msg: `postgres probe %s: server answers sessions: error 28P01 (FATAL): password authentication failed for user "splicer"`},
		{name: "no hba entry", health: h,
			server: fakePostgres(t, pgError("FATAL", "28000", `no pg_hba.conf entry for host "127.0.0.1"`), nil), ok: true,
			msg: `postgres probe %s: server answers sessions: error 28000 (FATAL): no pg_hba.conf entry for host "127.0.0.1"`},
		{name: "no database", health: h,
			server: fakePostgres(t, pgError("FATAL", "3D000", `database "app" does not exist`), nil), ok: true,
			msg: `postgres probe %s: server answers sessions: error 3D000 (FATAL): database "app" does not exist`},
		{name: "shutting down", health: h,
			server: fakePostgres(t, pgError("FATAL", "57P03", "the database system is shutting down"), nil), ok: false,
			msg: "postgres probe %s: server error 57P03 (FATAL): the database system is shutting down"},
		{name: "too many clients", health: h,
			server: fakePostgres(t, pgError("FATAL", "53300", "sorry, too many clients already"), nil), ok: false,
			msg: "postgres probe %s: server error 53300 (FATAL): sorry, too many clients already"},
		{name: "error without code", health: h,
			server: fakePostgres(t, pgMessage('E', []byte("SFATAL\x00Mx\x00\x00")), nil), ok: false,
			msg: "postgres probe %s: malformed reply: error without SQLSTATE"},
		{name: "unterminated error", health: h,
			server: fakePostgres(t, pgMessage('E', []byte("SFATAL")), nil), ok: false,
			msg: "postgres probe %s: malformed reply: unterminated error field"},
		{name: "short auth", health: h, server: fakePostgres(t, pgMessage('R', []byte{0, 5}), nil), ok: false,
			msg: "postgres probe %s: malformed reply: authentication message of 2 bytes"},
		{name: "unexpected type", health: h, server: fakePostgres(t, pgMessage('Z', []byte("I")), nil), ok: false,
			msg: "postgres probe %s: malformed reply: message type 'Z'"},
		{name: "too many notices", health: h,
			server: fakePostgres(t, notice+notice+notice+notice+notice+pgAuth(5, "salt"), nil), ok: false,
			msg: "postgres probe %s: malformed reply: more than 4 notices before authentication"},
		{name: "http server", health: h, server: closeAfter(len(pgStartup("splicer", "app")), "HTTP/1.1 400 Bad Request\r\n\r\n"), ok: false,
			msg: "postgres probe %s: malformed reply: type 'H' with length 1414811695"},
		{name: "truncated", health: h, server: closeAfter(len(pgStartup("splicer", "app")), pgAuth(5, "salt")[:7]), ok: false,
			msg: "postgres probe %s: read: unexpected EOF"},
		{name: "closed", health: h, server: closeAfter(len(pgStartup("splicer", "app")), ""), ok: false,
			msg: "postgres probe %s: read: EOF"},
		{name: "refused", health: h, ok: false,
			msg: "postgres probe %s: connect: connection refused"},
	})
}

// TestPostgresTrustTerminates: after AuthenticationOk the probe ends the
// session with a Terminate message instead of dropping it.
func TestPostgresTrustTerminates(t *testing.T) {
	seen := make(chan []byte, 1)
	addr := serve(t, fakePostgres(t, pgAuth(0, ""), seen))
	c, err := NewChecker(config.Health{Check: "postgres", User: "splicer", Database: "app"})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, c, addr, 0, true, "postgres probe "+addr.String()+": authentication ok")
	if got := <-seen; !bytes.Equal(got, pgTerminate) {
		t.Fatalf("after AuthenticationOk the server got %q, want Terminate %q", got, pgTerminate)
	}
}

// mysqlPacket frames a payload with sequence seq.
func mysqlPacket(seq byte, payload string) string {
	n := len(payload)
	return string([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}) + payload
}

// MySQL greetings: mysqlGreeting41 ends after the low capability bits
// (CLIENT_PROTOCOL_41 and CLIENT_SECURE_CONNECTION, no CLIENT_PLUGIN_AUTH);
// mysqlGreetingPlugin is a full MySQL 8 greeting offering CLIENT_PLUGIN_AUTH.
const (
	mysqlGreeting41     = "\x0a8.0.36\x00\x08\x00\x00\x00abcdefgh\x00\xff\xf7"
	mysqlGreetingPlugin = mysqlGreeting41 + "\xff\x02\x00\xff\xdf\x15" + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
		"ijklmnopqrst\x00caching_sha2_password\x00"
)

// The HandshakeResponse41 packets for user "splicer": capabilities, max
// packet size 64 KiB, utf8mb4, 23 zero bytes, the user, an empty auth
// response and, with plugin auth, the plugin's name.
const (
	mysqlLogin41 = "\x29\x00\x00\x01" + "\x01\x82\x00\x00" + "\x00\x00\x01\x00" + "\x2d" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
		"splicer\x00" + "\x00"
	mysqlLoginPlugin = "\x3f\x00\x00\x01" + "\x01\x82\x08\x00" + "\x00\x00\x01\x00" + "\x2d" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
		"splicer\x00" + "\x00" + "mysql_native_password\x00"
)

// Replies to a login, with the sequence numbers of a first answer (2) and
// of an answer after an auth switch (4).
var (
	mysqlOKReply     = mysqlPacket(2, "\x00\x00\x00\x02\x00\x00\x00")
	mysqlSwitch      = mysqlPacket(2, "\xfecaching_sha2_password\x00abcdefghijklmnopqrst\x00")
	mysqlOKAfterAuth = mysqlPacket(4, "\x00\x00\x00\x02\x00\x00\x00")
	// The empty auth response that answers a switch.
	mysqlEmptyAuth = "\x00\x00\x00\x03"
)

// mysqlErr builds an ERR packet with sequence seq, code, SQL state and
// message.
func mysqlErr(seq byte, code uint16, state, msg string) string {
	return mysqlPacket(seq, "\xff"+string([]byte{byte(code), byte(code >> 8)})+"#"+state+msg)
}

// readMySQLPacket reads one packet the probe sent, header included.
func readMySQLPacket(c net.Conn) ([]byte, error) {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	payload := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	if _, err := io.ReadFull(c, payload); err != nil {
		return nil, err
	}
	return append(hdr, payload...), nil
}

// fakeMySQL greets with greeting, answers each packet the probe sends with
// the next of replies, then reads until the probe hangs up. When sent is
// not nil it receives everything the probe wrote, in order.
func fakeMySQL(greeting string, replies []string, sent chan<- []byte) func(net.Conn) {
	return func(c net.Conn) {
		var got []byte
		defer func() {
			if sent != nil {
				sent <- got
			}
		}()
		if _, err := io.WriteString(c, mysqlPacket(0, greeting)); err != nil {
			return
		}
		for _, reply := range replies {
			p, err := readMySQLPacket(c)
			if err != nil {
				return
			}
			got = append(got, p...)
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
		rest, _ := io.ReadAll(c)
		got = append(got, rest...)
	}
}

// mysqlCloseAfterLogin greets with greeting, reads the login, writes reply
// and closes: the probe reads EOF, never a reset.
func mysqlCloseAfterLogin(greeting, reply string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.WriteString(c, mysqlPacket(0, greeting)); err != nil {
			return
		}
		if _, err := readMySQLPacket(c); err != nil {
			return
		}
		_, _ = io.WriteString(c, reply)
	}
}

// TestMySQLLogin pins the HandshakeResponse41 encoding.
func TestMySQLLogin(t *testing.T) {
	for _, tc := range []struct {
		pluginAuth bool
		want       string
	}{
		{false, mysqlLogin41},
		{true, mysqlLoginPlugin},
	} {
		if got := string(mysqlLogin("splicer", nil, tc.pluginAuth)); got != tc.want {
			t.Errorf("mysqlLogin(splicer, %v) = %q\nwant %q", tc.pluginAuth, got, tc.want)
		}
	}
}

func TestMySQLProbe(t *testing.T) {
	h := config.Health{Check: "mysql", User: "splicer"}
	denied := "Access denied for user 'splicer'@'10.0.0.9' (using password: NO)"
	runProbeCases(t, []probeCase{
		{name: "login", health: h, server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": login as "splicer" succeeded`},
		{name: "login without plugin auth", health: h, server: fakeMySQL(mysqlGreeting41, []string{mysqlOKReply}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": login as "splicer" succeeded`},
		{name: "auth switch", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlSwitch, mysqlOKAfterAuth}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": login as "splicer" succeeded`},
		{name: "access denied", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlErr(2, 1045, "28000", denied)}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36" answers sessions: error 1045: ` + denied + `; create user "splicer" without a password for the probe`},
		{name: "access denied after switch", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlSwitch, mysqlErr(4, 1045, "28000", denied)}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36" answers sessions: error 1045: ` + denied + `; create user "splicer" without a password for the probe`},
		{name: "access denied without password", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlErr(2, 1698, "28000", "Access denied for user 'splicer'@'localhost'")}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36" answers sessions: error 1698: Access denied for user 'splicer'@'localhost'; create user "splicer" without a password for the probe`},
		{name: "database access denied", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlErr(2, 1044, "42000", "Access denied for user 'splicer'@'%' to database 'app'")}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36" answers sessions: error 1044: Access denied for user 'splicer'@'%%' to database 'app'; create user "splicer" without a password for the probe`},
		{name: "too many connections at login", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlErr(2, 1040, "08004", "Too many connections")}, nil), ok: false,
			msg: "mysql probe %s: server error 1040: Too many connections"},
		{name: "shutdown in progress", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlErr(2, 1053, "08S01", "Server shutdown in progress")}, nil), ok: false,
			msg: "mysql probe %s: server error 1053: Server shutdown in progress"},
		{name: "second auth switch", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlSwitch, mysqlPacket(4, "\xfemysql_old_password\x00")}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: packet type 0xfe after login"},
		{name: "auth more data", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlPacket(2, "\x01\x04")}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: packet type 0x01 after login"},
		{name: "reply sequence", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlPacket(1, "\x00\x00\x00\x02\x00\x00\x00")}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: sequence 1, want 2"},
		{name: "sequence after switch", health: h,
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlSwitch, mysqlOKReply}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: sequence 2, want 4"},
		{name: "empty reply", health: h, server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlPacket(2, "")}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: packet length 0"},
		{name: "short error reply", health: h, server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlPacket(2, "\xff\x15")}, nil), ok: false,
			msg: "mysql probe %s: malformed error packet of 2 bytes"},
		{name: "truncated reply", health: h, server: mysqlCloseAfterLogin(mysqlGreetingPlugin, mysqlOKReply[:6]), ok: false,
			msg: "mysql probe %s: read: unexpected EOF"},
		{name: "closed after login", health: h, server: mysqlCloseAfterLogin(mysqlGreeting41, ""), ok: false,
			msg: "mysql probe %s: read: EOF"},
		{name: "too many connections", health: h,
			server: closeAfter(0, mysqlPacket(0, "\xff\x10\x04Too many connections")), ok: false,
			msg: "mysql probe %s: server error 1040: Too many connections"},
		{name: "host blocked with sqlstate", health: h,
			server: closeAfter(0, mysqlPacket(0, "\xff\x69\x04#HY000Host '10.0.0.9' is blocked because of many connection errors")), ok: false,
			msg: "mysql probe %s: server error 1129: Host '10.0.0.9' is blocked because of many connection errors"},
		{name: "short error", health: h, server: closeAfter(0, mysqlPacket(0, "\xff\x10")), ok: false,
			msg: "mysql probe %s: malformed error packet of 2 bytes"},
		{name: "protocol 9", health: h, server: closeAfter(0, mysqlPacket(0, "\x095.0\x00")), ok: false,
			msg: "mysql probe %s: greeting protocol version 9, want 10"},
		{name: "unterminated version", health: h, server: closeAfter(0, mysqlPacket(0, "\x0a8.0")), ok: false,
			msg: "mysql probe %s: malformed greeting: unterminated server version"},
		{name: "short greeting", health: h, server: closeAfter(0, mysqlPacket(0, mysqlGreeting41[:len(mysqlGreeting41)-1])), ok: false,
			msg: "mysql probe %s: malformed greeting: 14 bytes after the server version, want at least 15"},
		{name: "before protocol 4.1", health: h,
			server: closeAfter(0, mysqlPacket(0, "\x0a3.23.58\x00\x08\x00\x00\x00abcdefgh\x00\x2c\x00")), ok: false,
			msg: `mysql probe %s: server "3.23.58" lacks CLIENT_PROTOCOL_41 (MySQL 4.1 or later needed)`},
		{name: "wrong sequence", health: h, server: closeAfter(0, "\x01\x00\x00\x03\x0a"), ok: false,
			msg: "mysql probe %s: malformed greeting: sequence 3, want 0"},
		{name: "ssh server", health: h, server: closeAfter(0, "SSH-2.0-OpenSSH_9.2\r\n"), ok: false,
			msg: "mysql probe %s: malformed greeting: packet length 4739923"},
		{name: "truncated", health: h, server: closeAfter(0, mysqlPacket(0, mysqlGreeting41)[:10]), ok: false,
			msg: "mysql probe %s: read: unexpected EOF"},
		{name: "refused", health: h, ok: false,
			msg: "mysql probe %s: connect: connection refused"},
	})
}

// TestMySQLProbeSends checks every byte the probe writes: the login, the
// empty auth response after a switch, and COM_QUIT after OK only, so the
// server records a clean disconnect.
func TestMySQLProbeSends(t *testing.T) {
	quit := "\x01\x00\x00\x00\x01"
	for _, tc := range []struct {
		name     string
		greeting string
		replies  []string
		ok       bool
		sent     string
	}{
		{"ok", mysqlGreetingPlugin, []string{mysqlOKReply}, true, mysqlLoginPlugin + quit},
		{"ok without plugin auth", mysqlGreeting41, []string{mysqlOKReply}, true, mysqlLogin41 + quit},
		{"auth switch then ok", mysqlGreetingPlugin, []string{mysqlSwitch, mysqlOKAfterAuth}, true,
			mysqlLoginPlugin + mysqlEmptyAuth + quit},
		{"access denied", mysqlGreetingPlugin, []string{mysqlErr(2, 1045, "28000", "Access denied")}, true, mysqlLoginPlugin},
		{"too many connections", mysqlGreetingPlugin, []string{mysqlErr(2, 1040, "08004", "Too many connections")}, false,
			mysqlLoginPlugin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := make(chan []byte, 1)
			addr := serve(t, fakeMySQL(tc.greeting, tc.replies, sent))
			c, err := NewChecker(config.Health{Check: "mysql", User: "splicer"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if r := c.Check(ctx, addr); r.OK != tc.ok {
				t.Fatalf("Check = %+v, want OK %v", r, tc.ok)
			}
			if got := string(<-sent); got != tc.sent {
				t.Fatalf("probe sent %q\nwant %q", got, tc.sent)
			}
		})
	}
}

func TestRedisProbe(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "redis.pass")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPLICER_TEST_REDIS_PW", "wrong")
	plain := config.Health{Check: "redis"}
	withFile := config.Health{Check: "redis", Password: config.Secret{File: pwFile}}
	withEnv := config.Health{Check: "redis", Password: config.Secret{Env: "SPLICER_TEST_REDIS_PW"}}
	auth := map[string]string{
		"s3cret": "+OK",
		"wrong":  "-WRONGPASS invalid username-password pair or user is disabled.",
	}
	runProbeCases(t, []probeCase{
		{name: "pong", health: plain, server: fakeRedis(nil, "+PONG"), ok: true,
			msg: "redis probe %s: PONG"},
		{name: "loading", health: plain,
			server: fakeRedis(nil, "-LOADING Redis is loading the dataset in memory"), ok: false,
			msg: `redis probe %s: reply "-LOADING Redis is loading the dataset in memory": server loading`},
		{name: "masterdown", health: plain,
			server: fakeRedis(nil, "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), ok: false,
			msg: `redis probe %s: reply "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.": replica lost its master`},
		{name: "busy", health: plain, server: fakeRedis(nil, "-BUSY Redis is busy running a script."), ok: false,
			msg: `redis probe %s: reply "-BUSY Redis is busy running a script.": server busy running a script`},
		{name: "other error", health: plain, server: fakeRedis(nil, "-ERR boom"), ok: false,
			msg: `redis probe %s: reply "-ERR boom": error reply`},
		{name: "needs password", health: plain, server: fakeRedis(nil, "-NOAUTH Authentication required."), ok: false,
			msg: `redis probe %s: reply "-NOAUTH Authentication required.": server needs a password (set health.password)`},
		{name: "auth from file", health: withFile, server: fakeRedis(auth, "+PONG"), ok: true,
			msg: "redis probe %s: PONG"},
		{name: "auth from env rejected", health: withEnv, server: fakeRedis(auth, "+PONG"), ok: false,
			msg: `redis probe %s: AUTH reply "-WRONGPASS invalid username-password pair or user is disabled.": password rejected`},
		{name: "http server", health: plain, server: closeAfter(len(redisPing), "HTTP/1.1 400 Bad Request\r\n\r\n"), ok: false,
			msg: `redis probe %s: reply "HTTP/1.1 400 Bad Request": not a Redis reply`},
		{name: "endless line", health: plain, server: replyAfter(14, string(bytes.Repeat([]byte("x"), resp.MaxLine+1))), ok: false,
			msg: `redis probe %s: reply "` + string(bytes.Repeat([]byte("x"), 64)) + `"...: line longer than 4096 bytes`},
		{name: "partial line", health: plain, server: closeAfter(14, "+PON"), ok: false,
			msg: `redis probe %s: read: EOF after partial reply "+PON"`},
		{name: "refused", health: plain, ok: false,
			msg: "redis probe %s: connect: connection refused"},
	})
}

// TestRedisPing pins the PING the probe sends.
func TestRedisPing(t *testing.T) {
	r := bufio.NewReader(bytes.NewReader(redisPing))
	if args, err := readRESP(r); err != nil || len(args) != 1 || args[0] != "PING" {
		t.Fatalf("PING decodes to %q, %v", args, err)
	}
}
