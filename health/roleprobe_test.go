package health

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// mysqlResultSet is a text result set of one row, the packets numbered
// from 1: column count, one definition per column, EOF, the row, EOF.
func mysqlResultSet(vals ...string) string {
	seq := byte(1)
	next := func(payload string) string {
		p := mysqlPacket(seq, payload)
		seq++
		return p
	}
	s := next(string([]byte{byte(len(vals))}))
	for range vals {
		s += next("\x03def\x00\x00\x00\x01v\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x80\x00\x00\x00\x00")
	}
	eof := "\xfe\x00\x00\x02\x00"
	s += next(eof)
	row := ""
	for _, v := range vals {
		if v == "NULL" {
			row += "\xfb"
			continue
		}
		row += string([]byte{byte(len(v))}) + v
	}
	return s + next(row) + next(eof)
}

// The 20-byte scramble of mysqlGreetingPlugin, and a MariaDB greeting with
// the same scramble.
const (
	mysqlTestScramble = "abcdefghijklmnopqrst"
	mariaGreeting     = "\x0a10.11.19-MariaDB\x00\x08\x00\x00\x00abcdefgh\x00\xff\xf7" + "\xff\x02\x00\xff\xdf\x15" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + "ijklmnopqrst\x00mysql_native_password\x00"
)

// nativeAnswer and sha2Answer compute the two plugins' answers from their
// definitions, apart from the code under test.
func nativeAnswer(password, scramble string) string {
	a := sha1.Sum([]byte(password))
	b := sha1.Sum(a[:])
	c := sha1.Sum([]byte(scramble + string(b[:])))
	out := make([]byte, 20)
	for i := range out {
		out[i] = a[i] ^ c[i]
	}
	return string(out)
}

func sha2Answer(password, scramble string) string {
	a := sha256.Sum256([]byte(password))
	b := sha256.Sum256(a[:])
	c := sha256.Sum256([]byte(string(b[:]) + scramble))
	out := make([]byte, 32)
	for i := range out {
		out[i] = a[i] ^ c[i]
	}
	return string(out)
}

// loginWith is the HandshakeResponse41 with plugin auth for user
// "splicer" carrying auth.
func loginWith(auth string) string {
	payload := "\x01\x82\x08\x00" + "\x00\x00\x01\x00" + "\x2d" + strings.Repeat("\x00", 23) +
		"splicer\x00" + string([]byte{byte(len(auth))}) + auth + "mysql_native_password\x00"
	return mysqlPacket(1, payload)
}

func TestMySQLRoleProbe(t *testing.T) {
	t.Setenv("SPLICER_TEST_MYSQL_PW", "s3cret")
	role := func(r string, password bool) config.Health {
		h := config.Health{Check: "mysql", User: "splicer", Role: r}
		if password {
			h.Password = config.Secret{Env: "SPLICER_TEST_MYSQL_PW"}
		}
		return h
	}
	switchTo := func(plugin string) string {
		return mysqlPacket(2, "\xfe"+plugin+"\x00"+mysqlTestScramble+"\x00")
	}
	okAt := func(seq byte) string { return mysqlPacket(seq, "\x00\x00\x00\x02\x00\x00\x00") }
	unknownVar := mysqlErr(1, 1193, "HY000", "Unknown system variable 'super_read_only'")
	runProbeCases(t, []probeCase{
		{name: "primary", health: role(config.RolePrimary, true),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlResultSet("0", "0")}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": primary (read_only=0)`},
		{name: "replica", health: role(config.RoleReplica, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlResultSet("1", "1")}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": replica (read_only=1)`},
		{name: "super_read_only alone", health: role(config.RoleAny, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlResultSet("0", "ON")}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": replica (super_read_only=1)`},
		{name: "replica wanted", health: role(config.RoleReplica, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlResultSet("0", "0")}, nil), ok: false,
			msg: `mysql probe %s: primary (read_only=0), want replica`},
		{name: "mariadb asks read_only only", health: role(config.RolePrimary, false),
			server: fakeMySQL(mariaGreeting, []string{mysqlOKReply, mysqlResultSet("1")}, nil), ok: false,
			msg: `mysql probe %s: replica (read_only=1), want primary`},
		{name: "old mysql without super_read_only", health: role(config.RolePrimary, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, unknownVar, mysqlResultSet("0")}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": primary (read_only=0)`},
		{name: "password refused", health: role(config.RolePrimary, true),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlErr(2, 1045, "28000", "Access denied for user 'splicer'@'10.0.0.9' (using password: YES)")}, nil), ok: false,
			msg: `mysql probe %s: server "8.0.36" refused the login: error 1045: Access denied for user 'splicer'@'10.0.0.9' (using password: YES); check health.password`},
		{name: "role without a passwordless account", health: role(config.RolePrimary, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlErr(2, 1045, "28000", "Access denied")}, nil), ok: false,
			msg: `mysql probe %s: server "8.0.36" refused the login: error 1045: Access denied; the role check must log in: create the user without a password, or set health.password`},
		{name: "caching_sha2 fast auth", health: role("", true),
			server: fakeMySQL(mysqlGreetingPlugin, []string{switchTo("caching_sha2_password"), mysqlPacket(4, "\x01\x03") + okAt(5)}, nil), ok: true,
			msg: `mysql probe %s: server "8.0.36": login as "splicer" succeeded`},
		{name: "caching_sha2 full auth", health: role("", true),
			server: fakeMySQL(mysqlGreetingPlugin, []string{switchTo("caching_sha2_password"), mysqlPacket(4, "\x01\x04")}, nil), ok: false,
			msg: "mysql probe %s: caching_sha2_password wants full authentication, which needs TLS or the server's RSA key; " +
				"use mysql_native_password for the probe account, or log in once with a client so the server caches it"},
		{name: "unknown plugin", health: role("", true),
			server: fakeMySQL(mysqlGreetingPlugin, []string{switchTo("client_ed25519")}, nil), ok: false,
			msg: `mysql probe %s: the account uses plugin "client_ed25519", which the probe does not speak; use mysql_native_password or caching_sha2_password`},
		{name: "query refused", health: role(config.RolePrimary, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlErr(1, 1227, "42000", "Access denied; you need the SUPER privilege")}, nil), ok: false,
			msg: `mysql probe %s: query: server error 1227: Access denied; you need the SUPER privilege`},
		{name: "no row", health: role(config.RolePrimary, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlPacket(1, "\x02") + mysqlPacket(2, "\x03def") +
				mysqlPacket(3, "\x03def") + mysqlPacket(4, "\xfe\x00\x00\x02\x00") + mysqlPacket(5, "\xfe\x00\x00\x02\x00")}, nil), ok: false,
			msg: "mysql probe %s: malformed reply: query returned no row"},
		{name: "odd flag", health: role(config.RolePrimary, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlResultSet("2", "0")}, nil), ok: false,
			msg: `mysql probe %s: malformed reply: @@global.read_only is "2"`},
		{name: "null flag", health: role(config.RolePrimary, false),
			server: fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply, mysqlResultSet("NULL", "0")}, nil), ok: false,
			msg: `mysql probe %s: malformed reply: @@global.read_only is NULL`},
		{name: "short scramble", health: role(config.RolePrimary, true),
			server: fakeMySQL(mysqlGreeting41, nil, nil), ok: false,
			msg: `mysql probe %s: server "8.0.36" sends a 8-byte scramble; a password login needs 20`},
	})
}

// TestMySQLPasswordSends checks the bytes of password logins: the native
// scramble in the login, the caching_sha2 answer to a switch, the query
// and COM_QUIT.
func TestMySQLPasswordSends(t *testing.T) {
	t.Setenv("SPLICER_TEST_MYSQL_PW", "s3cret")
	h := config.Health{Check: "mysql", User: "splicer", Password: config.Secret{Env: "SPLICER_TEST_MYSQL_PW"}, Role: config.RolePrimary}
	quit := "\x01\x00\x00\x00\x01"
	query := func(sql string) string { return mysqlPacket(0, "\x03"+sql) }
	for _, tc := range []struct {
		name     string
		greeting string
		replies  []string
		sent     string
	}{
		{"native", mysqlGreetingPlugin, []string{mysqlOKReply, mysqlResultSet("0", "0")},
			loginWith(nativeAnswer("s3cret", mysqlTestScramble)) + query("SELECT @@global.read_only, @@global.super_read_only") + quit},
		{"mariadb", mariaGreeting, []string{mysqlOKReply, mysqlResultSet("0")},
			loginWith(nativeAnswer("s3cret", mysqlTestScramble)) + query("SELECT @@global.read_only") + quit},
		{"caching_sha2", mysqlGreetingPlugin,
			[]string{mysqlPacket(2, "\xfecaching_sha2_password\x00ABCDEFGHIJKLMNOPQRST\x00"),
				mysqlPacket(4, "\x01\x03") + mysqlPacket(5, "\x00\x00\x00\x02\x00\x00\x00"), mysqlResultSet("0", "0")},
			loginWith(nativeAnswer("s3cret", mysqlTestScramble)) + mysqlPacket(3, sha2Answer("s3cret", "ABCDEFGHIJKLMNOPQRST")) +
				query("SELECT @@global.read_only, @@global.super_read_only") + quit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := make(chan []byte, 1)
			addr := serve(t, fakeMySQL(tc.greeting, tc.replies, sent))
			c, err := NewChecker(h)
			if err != nil {
				t.Fatal(err)
			}
			if r := checkResult(t, c, addr, 0, true, fmt.Sprintf("mysql probe %s: server %q: primary (read_only=0)", addr,
				map[bool]string{true: "10.11.19-MariaDB", false: "8.0.36"}[tc.greeting == mariaGreeting])); r.Role != config.RolePrimary {
				t.Errorf("Role %q", r.Role)
			}
			if got := string(<-sent); got != tc.sent {
				t.Fatalf("probe sent %q\nwant %q", got, tc.sent)
			}
		})
	}
}

// fakeRedisServer answers AUTH from auth (password to reply line) and any
// other command from replies, keyed by its words joined with spaces, with
// a raw RESP reply; unknown commands get -ERR unknown command.
func fakeRedisServer(auth map[string]string, replies map[string]string) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			args, err := readRESP(r)
			if err != nil {
				return
			}
			reply, ok := replies[strings.Join(args, " ")]
			switch {
			case len(args) == 2 && args[0] == "AUTH":
				reply = auth[args[1]] + "\r\n"
			case !ok:
				reply = "-ERR unknown command '" + args[0] + "'\r\n"
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
	}
}

// redisReplicaOf is the ROLE reply of a replica of master at offset.
func redisReplicaOf(master netip.AddrPort, state string, offset int) string {
	host, port := master.Addr().String(), master.Port()
	return fmt.Sprintf("*5\r\n$5\r\nslave\r\n$%d\r\n%s\r\n:%d\r\n$%d\r\n%s\r\n:%d\r\n", len(host), host, port, len(state), state, offset)
}

// bulk encodes a RESP bulk string.
func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

func redisMasterAt(offset int) string {
	return fmt.Sprintf("*3\r\n$6\r\nmaster\r\n:%d\r\n*0\r\n", offset)
}

func TestRedisRoleProbe(t *testing.T) {
	t.Setenv("SPLICER_TEST_REDIS_PW", "s3cret")
	auth := map[string]string{"s3cret": "+OK"}
	master := serve(t, fakeRedisServer(auth, map[string]string{"ROLE": redisMasterAt(1000)}))
	replicaOf := func(state string, offset int) func(net.Conn) {
		return fakeRedisServer(auth, map[string]string{"ROLE": redisReplicaOf(master, state, offset)})
	}
	h := func(role string, maxLag int) config.Health {
		return config.Health{Check: "redis", Role: role, MaxLagBytes: maxLag, Password: config.Secret{Env: "SPLICER_TEST_REDIS_PW"}}
	}
	gone := testutil.RefusedAddr(t, "tcp")
	orphan := fakeRedisServer(auth, map[string]string{"ROLE": redisReplicaOf(gone, "connected", 10)})
	middle := serve(t, replicaOf("connected", 5))
	chained := fakeRedisServer(auth, map[string]string{"ROLE": redisReplicaOf(middle, "connected", 1)})
	ms := master.String()
	runProbeCases(t, []probeCase{
		{name: "master", health: h(config.RolePrimary, 0), server: fakeRedisServer(auth, map[string]string{"ROLE": redisMasterAt(7)}), ok: true,
			msg: "redis probe %s: master"},
		{name: "master, replica wanted", health: h(config.RoleReplica, 0),
			server: fakeRedisServer(auth, map[string]string{"ROLE": redisMasterAt(7)}), ok: false,
			msg: "redis probe %s: master, want replica"},
		{name: "replica", health: h(config.RoleReplica, 0), server: replicaOf("sync", 3), ok: true,
			msg: "redis probe %s: replica of " + ms + " (sync)"},
		{name: "replica, primary wanted", health: h(config.RolePrimary, 0), server: replicaOf("connected", 3), ok: false,
			msg: "redis probe %s: replica of " + ms + " (connected), want primary"},
		{name: "replica within lag", health: h(config.RoleReplica, 64), server: replicaOf("connected", 990), ok: true,
			msg: "redis probe %s: replica of " + ms + " (connected), 10 bytes behind"},
		{name: "replica ahead of the offset read", health: h(config.RoleAny, 64), server: replicaOf("connected", 1003), ok: true,
			msg: "redis probe %s: replica of " + ms + " (connected), 0 bytes behind"},
		{name: "replica lagging", health: h(config.RoleReplica, 5), server: replicaOf("connected", 990), ok: false,
			msg: "redis probe %s: replica of " + ms + " (connected), 10 bytes behind, above max_lag_bytes 5"},
		{name: "replica disconnected", health: h(config.RoleReplica, 5), server: replicaOf("connect", 990), ok: false,
			msg: "redis probe %s: replica of " + ms + " (connect): lag unknown while the link to the master is not connected"},
		{name: "master unreachable", health: h(config.RoleReplica, 5), server: orphan, ok: false,
			msg: "redis probe %s: replica of " + gone.String() + " (connected): lag unknown: master connect: connection refused"},
		{name: "master is a replica", health: h(config.RoleReplica, 5), server: chained, ok: false,
			msg: "redis probe %s: replica of " + middle.String() + " (connected): lag unknown: its master " + middle.String() + " is itself a replica"},
		{name: "ROLE refused, INFO instead", health: h(config.RolePrimary, 0),
			server: fakeRedisServer(auth, map[string]string{
				"ROLE":             "-NOPERM this user has no permissions to run the 'role' command\r\n",
				"INFO replication": bulk("# Replication\r\nrole:master\r\nmaster_repl_offset:42\r\n"),
			}), ok: true,
			msg: "redis probe %s: master"},
		{name: "INFO replica", health: h(config.RoleReplica, 0),
			server: fakeRedisServer(auth, map[string]string{
				"INFO replication": bulk("# Replication\r\nrole:slave\r\nmaster_host:10.0.0.5\r\nmaster_port:6379\r\nmaster_link_status:down\r\nslave_repl_offset:7\r\n"),
			}), ok: true,
			msg: "redis probe %s: replica of 10.0.0.5:6379 (link down)"},
		{name: "a sentinel", health: h(config.RolePrimary, 0),
			server: fakeRedisServer(auth, map[string]string{"ROLE": "*2\r\n$8\r\nsentinel\r\n*1\r\n$1\r\nm\r\n"}), ok: false,
			msg: "redis probe %s: a Sentinel, not a data server"},
		{name: "malformed role", health: h(config.RolePrimary, 0),
			server: fakeRedisServer(auth, map[string]string{"ROLE": "*2\r\n$6\r\nmaster\r\n$1\r\nx\r\n"}), ok: false,
			msg: `redis probe %s: malformed reply: ROLE "[master x]"`},
		{name: "role is a string", health: h(config.RolePrimary, 0),
			server: fakeRedisServer(auth, map[string]string{"ROLE": "+master\r\n"}), ok: false,
			msg: `redis probe %s: ROLE reply "+master": unexpected reply`},
		{name: "loading", health: h(config.RolePrimary, 0),
			server: fakeRedisServer(auth, map[string]string{"ROLE": "-LOADING Redis is loading the dataset in memory\r\n"}), ok: false,
			msg: `redis probe %s: ROLE reply "-LOADING Redis is loading the dataset in memory": server loading`},
		{name: "password rejected", health: h(config.RolePrimary, 0),
			server: fakeRedisServer(map[string]string{"s3cret": "-WRONGPASS invalid username-password pair or user is disabled."}, nil), ok: false,
			msg: `redis probe %s: AUTH reply "-WRONGPASS invalid username-password pair or user is disabled.": password rejected`},
	})
}
