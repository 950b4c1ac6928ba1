package health

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
)

// Hostile servers: a probe must refuse a malformed or hostile reply at any
// step of its handshake, within its timeout, and never panic. A replayed
// server sends a whole canned conversation at once (the probes read in
// order and the servers here need nothing from the client), then closes
// its side, so a probe that wants more than it got reads EOF at once.
// The probes' conversations run here without the dial, which the other
// tests cover.

// hostileTimeout is the probe timeout of these tests; a verdict must come
// within it plus hostileSlack.
const (
	hostileTimeout = 300 * time.Millisecond
	hostileSlack   = 2 * time.Second
)

// scriptedServer returns the client end of a unix socket pair whose server
// end writes stream, half-closes and reads until the client is done;
// done is closed once the server end has closed.
func scriptedServer(t testing.TB, stream []byte) (client net.Conn, done <-chan struct{}) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	client, server := fileConn(t, fds[0]), fileConn(t, fds[1])
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer server.Close()
		_, _ = server.Write(stream)
		_ = server.(*net.UnixConn).CloseWrite()
		_, _ = io.Copy(io.Discard, server)
	}()
	return client, ch
}

// replay runs converse against a server that writes stream, half-closes
// and reads until the probe is done, over a unix socket pair: fuzzing
// over TCP would leave tens of thousands of TIME_WAIT sockets behind,
// eating the ephemeral ports every test on the machine shares.
func replay(t testing.TB, converse conversation, stream []byte) (seen, error) {
	t.Helper()
	client, done := scriptedServer(t, stream)
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	release, err := tie(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, perr := converse(ctx, client)
	release()
	<-done
	if d := time.Since(start); d > hostileTimeout+hostileSlack {
		t.Fatalf("verdict after %v on %q: %v %v", d, stream, s, perr)
	}
	if perr == nil && s.detail == "" || perr != nil && perr.Error() == "" {
		t.Fatalf("no message on %q", stream)
	}
	return s, perr
}

// fileConn wraps a socket fd in a net.Conn.
func fileConn(t testing.TB, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "socketpair")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// script is a probe configuration with a complete, minimal server side
// that it passes: every strict prefix of stream must fail.
type script struct {
	name   string
	health config.Health
	stream string
}

func scripts() []script {
	pgLogin := pgAuth(0, "") + pgParam("server_version", "15.8") + pgParam("in_hot_standby", "on") +
		pgMessage('K', make([]byte, 8)) + pgReady
	pgMD5 := pgAuth(5, "salt") + pgLogin
	return []script{
		{"postgres primary", config.Health{Check: "postgres", User: "u", Role: config.RoleAny},
			pgAuth(0, "") + pgParam("in_hot_standby", "off") + pgReady + pgAnswer("f", "000000020000000000000001", "NULL", "f", "NULL")},
		{"postgres lagging replica, md5", config.Health{Check: "postgres", User: "u", Role: config.RoleReplica,
			MaxLag: time.Minute, Password: config.Secret{Env: "SPLICER_TEST_HOSTILE_PW"}},
			pgMD5 + pgAnswer("t", "NULL", "f", "t", "1.5")},
		{"postgres handshake", config.Health{Check: "postgres", User: "u"},
			pgMessage('N', []byte("SNOTICE\x00Mx\x00\x00")) + pgAuth(10, "SCRAM-SHA-256\x00\x00")},
		{"mysql role", config.Health{Check: "mysql", User: "splicer", Role: config.RoleAny, Password: config.Secret{Env: "SPLICER_TEST_HOSTILE_PW"}},
			mysqlPacket(0, mysqlGreetingPlugin) + mysqlPacket(2, "\xfecaching_sha2_password\x00ABCDEFGHIJKLMNOPQRST\x00") +
				mysqlPacket(4, "\x01\x03") + mysqlPacket(5, "\x00\x00\x00\x02\x00\x00\x00") + mysqlResultSet("1", "0")},
		{"mysql login", config.Health{Check: "mysql", User: "splicer"},
			mysqlPacket(0, mariaGreeting) + mysqlOKReply},
		{"redis role", config.Health{Check: "redis", Role: config.RoleAny, Password: config.Secret{Env: "SPLICER_TEST_HOSTILE_PW"}},
			"+OK\r\n-NOPERM no\r\n" + bulk("# Replication\r\nrole:slave\r\nmaster_host:h\r\nmaster_port:1\r\nmaster_link_status:up\r\nslave_repl_offset:7\r\n")},
		{"redis ping", config.Health{Check: "redis"}, "+PONG\r\n"},
	}
}

// TestHostileTruncation cuts each conversation at every byte: the probe
// must fail at once, and pass on the whole.
func TestHostileTruncation(t *testing.T) {
	t.Setenv("SPLICER_TEST_HOSTILE_PW", "pw")
	for _, cv := range scripts() {
		t.Run(cv.name, func(t *testing.T) {
			c, _, err := newConversation(cv.health)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := replay(t, c, []byte(cv.stream)); err != nil {
				t.Fatalf("whole conversation failed: %v", err)
			}
			for cut := range len(cv.stream) {
				if s, err := replay(t, c, []byte(cv.stream[:cut])); err == nil {
					t.Fatalf("passed on the first %d of %d bytes: %s", cut, len(cv.stream), s.detail)
				}
			}
		})
	}
}

// TestHostileCorruption changes each byte of each conversation in turn: a
// verdict must come in time, without a panic, and when the probe still
// passes its message must be one of a passing probe.
func TestHostileCorruption(t *testing.T) {
	t.Setenv("SPLICER_TEST_HOSTILE_PW", "pw")
	for _, cv := range scripts() {
		t.Run(cv.name, func(t *testing.T) {
			c, _, err := newConversation(cv.health)
			if err != nil {
				t.Fatal(err)
			}
			b := []byte(cv.stream)
			for i := range b {
				for _, x := range []byte{0xff, 0x01} {
					b[i] ^= x
					if s, err := replay(t, c, b); err == nil && strings.Contains(s.detail, "malformed") {
						t.Fatalf("passed with %q", s.detail)
					}
					b[i] ^= x
				}
			}
		})
	}
}

// fuzzProbe fuzzes the server side of one probe kind.
func fuzzProbe(f *testing.F, check string) {
	f.Setenv("SPLICER_TEST_HOSTILE_PW", "pw")
	var convs []conversation
	for _, cv := range scripts() {
		if cv.health.Check == check {
			f.Add([]byte(cv.stream))
			c, _, err := newConversation(cv.health)
			if err != nil {
				f.Fatal(err)
			}
			convs = append(convs, c)
		}
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		for _, c := range convs {
			replay(t, c, stream)
		}
	})
}

// FuzzPostgresProbe, FuzzMySQLProbe and FuzzRedisProbe feed arbitrary
// server replies to the probes: `make fuzz` runs them.
func FuzzPostgresProbe(f *testing.F) { fuzzProbe(f, config.CheckPostgres) }

func FuzzMySQLProbe(f *testing.F) { fuzzProbe(f, config.CheckMySQL) }

func FuzzRedisProbe(f *testing.F) { fuzzProbe(f, config.CheckRedis) }
