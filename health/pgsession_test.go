package health

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// TestSCRAMVector runs the client through RFC 7677's example exchange.
func TestSCRAMVector(t *testing.T) {
	s, first := startScram("pencil", "user", "rOprNGfwEbeRWgbNEkqO")
	if got := string(first); got != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" {
		t.Fatalf("client-first %q", got)
	}
	final, err := s.answer([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="; string(final) != want {
		t.Fatalf("client-final %q\nwant %q", final, want)
	}
	if err := s.verify([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")); err != nil || !s.verified {
		t.Fatalf("server signature refused: %v", err)
	}
	s2, _ := startScram("pencil", "user", "rOprNGfwEbeRWgbNEkqO")
	if _, err := s2.answer([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")); err != nil {
		t.Fatal(err)
	}
	if err := s2.verify([]byte("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")); err == nil || s2.verified {
		t.Fatal("a wrong server signature passed")
	}
}

// pgStep is one step of a scripted PostgreSQL server: read one frontend
// message of type want (0: the untyped StartupMessage), or send reply.
type pgStep struct {
	want  byte
	check func(body []byte) string // optional; returns a complaint
	reply string
}

// pgRead waits for a frontend message of type typ (0 for the startup).
func pgRead(typ byte, check func([]byte) string) pgStep { return pgStep{want: typ, check: check} }

// pgSend sends server messages.
func pgSend(msgs ...string) pgStep { return pgStep{reply: strings.Join(msgs, "")} }

// fakePgScript plays steps, then reads until the client hangs up; seen
// gets the types of the messages the client sent after the script.
func fakePgScript(t *testing.T, steps []pgStep, after chan<- []byte) func(net.Conn) {
	return func(c net.Conn) {
		for _, st := range steps {
			if st.reply != "" {
				if _, err := io.WriteString(c, st.reply); err != nil {
					return
				}
				continue
			}
			body, err := readFrontend(c, st.want)
			if err != nil {
				return
			}
			if st.check != nil {
				if complaint := st.check(body); complaint != "" {
					t.Errorf("message %q: %s", st.want, complaint)
				}
			}
		}
		rest, _ := io.ReadAll(c)
		if after != nil {
			after <- rest
		}
	}
}

// readFrontend reads one frontend message: a startup (typ 0) has no type
// byte.
func readFrontend(c net.Conn, typ byte) ([]byte, error) {
	hdr := make([]byte, 5)
	if typ == 0 {
		hdr = hdr[1:]
	}
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	if typ != 0 && hdr[0] != typ {
		return nil, fmt.Errorf("message type %q, want %q", hdr[0], typ)
	}
	n := binary.BigEndian.Uint32(hdr[len(hdr)-4:])
	body := make([]byte, n-4)
	_, err := io.ReadFull(c, body)
	return body, err
}

// pgParam, pgReady and pgRow build server messages.
func pgParam(k, v string) string { return pgMessage('S', []byte(k+"\x00"+v+"\x00")) }

var pgReady = pgMessage('Z', []byte("I"))

func pgRow(cols ...string) string {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(cols)))
	for _, c := range cols {
		if c == "NULL" {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
		b = append(b, c...)
	}
	return pgMessage('D', b)
}

// pgAnswer is a query's answer carrying one row.
func pgAnswer(cols ...string) string {
	return pgMessage('T', []byte{0, 0}) + pgRow(cols...) + pgMessage('C', []byte("SELECT 1\x00")) + pgReady
}

// pgLoggedIn is what a server sends after AuthenticationOk.
func pgLoggedIn(hotStandby string) string {
	s := pgAuth(0, "") + pgParam("server_version", "15.8")
	if hotStandby != "" {
		s += pgParam("in_hot_standby", hotStandby)
	}
	return s + pgMessage('K', make([]byte, 8)) + pgReady
}

// wantQuery checks the probe's query is the status query.
func wantQuery(body []byte) string {
	if string(body) != pgStatusQuery+"\x00" {
		return fmt.Sprintf("query %q", body)
	}
	return ""
}

// md5Answer is the md5 password message PostgreSQL expects, computed here
// from its definition.
func md5Answer(user, password, salt string) string {
	a := md5.Sum([]byte(password + user))
	b := md5.Sum([]byte(hex.EncodeToString(a[:]) + salt))
	return "md5" + hex.EncodeToString(b[:]) + "\x00"
}

func TestPostgresSessionProbe(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := func(role string, lag time.Duration, password bool) config.Health {
		c := config.Health{Check: "postgres", User: "splicer", Database: "app", Role: role, MaxLag: lag}
		if password {
			c.Password = config.Secret{File: pw}
		}
		return c
	}
	startup := pgRead(0, func(b []byte) string {
		if want := pgStartup("splicer", "app")[4:]; !bytes.Equal(b, want) {
			return fmt.Sprintf("startup %q, want %q", b, want)
		}
		return ""
	})
	query := pgRead('Q', wantQuery)
	primaryRow := pgAnswer("f", "000000030000000000000005", "NULL", "f", "NULL")
	script := func(steps ...pgStep) func(net.Conn) { return fakePgScript(t, append([]pgStep{startup}, steps...), nil) }
	notice := pgMessage('N', []byte("SNOTICE\x00Cxx000\x00Mhello\x00\x00"))
	runProbeCases(t, []probeCase{
		{name: "trusted primary", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(notice+pgLoggedIn("off")), query, pgSend(primaryRow)), ok: true,
			msg: "postgres probe %s: primary, timeline 3"},
		{name: "primary before 14 asks", health: h(config.RoleAny, 0, false),
			server: script(pgSend(pgLoggedIn("")), query, pgSend(primaryRow)), ok: true,
			msg: "postgres probe %s: primary, timeline 3"},
		{name: "replica from in_hot_standby", health: h(config.RoleReplica, 0, false),
			server: script(pgSend(pgLoggedIn("on"))), ok: true,
			msg: "postgres probe %s: replica"},
		{name: "replica before 14", health: h(config.RoleReplica, 0, false),
			server: script(pgSend(pgLoggedIn("")), query, pgSend(pgAnswer("t", "NULL", "t", "t", "3"))), ok: true,
			msg: "postgres probe %s: replica"},
		{name: "replica wanted, primary found", health: h(config.RoleReplica, 0, false),
			server: script(pgSend(pgLoggedIn("off"))), ok: false,
			msg: "postgres probe %s: primary, want replica"},
		{name: "primary wanted, replica found", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgLoggedIn("on"))), ok: false,
			msg: "postgres probe %s: replica, want primary"},
		{name: "replica caught up", health: h(config.RoleReplica, time.Second, false),
			server: script(pgSend(pgLoggedIn("on")), query, pgSend(pgAnswer("t", "NULL", "t", "t", "120.5"))), ok: true,
			msg: "postgres probe %s: replica, replay lag 0s"},
		{name: "replica lagging", health: h(config.RoleReplica, time.Second, false),
			server: script(pgSend(pgLoggedIn("on")), query, pgSend(pgAnswer("t", "NULL", "f", "t", "2.5"))), ok: false,
			msg: "postgres probe %s: replica, replay lag 2.5s above max_lag 1s"},
		{name: "replica within lag", health: h(config.RoleAny, time.Second, false),
			server: script(pgSend(pgLoggedIn("on")), query, pgSend(pgAnswer("t", "NULL", "f", "t", "0.25"))), ok: true,
			msg: "postgres probe %s: replica, replay lag 250ms"},
		{name: "replica cut off", health: h(config.RoleReplica, time.Minute, false),
			server: script(pgSend(pgLoggedIn("on")), query, pgSend(pgAnswer("t", "NULL", "t", "f", "30"))), ok: true,
			msg: "postgres probe %s: replica, replay lag 30s (not streaming)"},
		{name: "replica lag unknown", health: h(config.RoleReplica, time.Minute, false),
			server: script(pgSend(pgLoggedIn("on")), query, pgSend(pgAnswer("t", "NULL", "NULL", "f", "NULL"))), ok: false,
			msg: "postgres probe %s: replica, replay lag unknown: no transaction replayed since it started, and it is not streaming"},
		{name: "md5", health: h(config.RolePrimary, 0, true),
			server: script(pgSend(pgAuth(5, "salt")), pgRead('p', func(b []byte) string {
				if want := md5Answer("splicer", "s3cret", "salt"); string(b) != want {
					return fmt.Sprintf("md5 answer %q, want %q", b, want)
				}
				return ""
			}), pgSend(pgLoggedIn("off")), query, pgSend(primaryRow)), ok: true,
			msg: "postgres probe %s: primary, timeline 3"},
		{name: "cleartext password, login only", health: h("", 0, true),
			server: script(pgSend(pgAuth(3, "")), pgRead('p', func(b []byte) string {
				if string(b) != "s3cret\x00" {
					return fmt.Sprintf("password %q", b)
				}
				return ""
			}), pgSend(pgLoggedIn("off"))), ok: true,
			msg: "postgres probe %s: authentication password succeeded"},
		{name: "wrong password", health: h(config.RolePrimary, 0, true),
			server: script(pgSend(pgAuth(5, "salt")), pgRead('p', nil),
				pgSend(pgError("FATAL", "28P01", `password authentication failed for user "splicer"`))), ok: false,
			msg: `postgres probe %s: server error 28P01 (FATAL): password authentication failed for user "splicer"`},
		{name: "password needed", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgAuth(10, "SCRAM-SHA-256\x00\x00"))), ok: false,
			msg: "postgres probe %s: server asks for SCRAM-SHA-256: set health.password"},
		{name: "only channel binding", health: h(config.RolePrimary, 0, true),
			server: script(pgSend(pgAuth(10, "SCRAM-SHA-256-PLUS\x00\x00"))), ok: false,
			msg: `postgres probe %s: server offers SASL mechanisms "SCRAM-SHA-256-PLUS"; the probe speaks SCRAM-SHA-256 (without channel binding)`},
		{name: "gssapi", health: h(config.RolePrimary, 0, true),
			server: script(pgSend(pgAuth(7, ""))), ok: false,
			msg: "postgres probe %s: server asks for authentication gssapi, which the probe does not speak; give the probe user trust, password, md5 or scram-sha-256 in pg_hba.conf"},
		{name: "starting up", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgError("FATAL", "57P03", "the database system is starting up"))), ok: false,
			msg: "postgres probe %s: server error 57P03 (FATAL): the database system is starting up"},
		{name: "no such database", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgError("FATAL", "3D000", `database "app" does not exist`))), ok: false,
			msg: `postgres probe %s: server error 3D000 (FATAL): database "app" does not exist`},
		{name: "query refused", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgLoggedIn("off")), query,
				pgSend(pgError("ERROR", "42501", "permission denied for function pg_walfile_name")+pgReady)), ok: false,
			msg: "postgres probe %s: query: server error 42501 (ERROR): permission denied for function pg_walfile_name"},
		{name: "parameter before login", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgParam("in_hot_standby", "off"))), ok: false,
			msg: "postgres probe %s: malformed reply: ParameterStatus before AuthenticationOk"},
		{name: "ready before login", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgReady)), ok: false,
			msg: "postgres probe %s: malformed reply: ReadyForQuery before AuthenticationOk"},
		{name: "bad timeline", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgLoggedIn("off")), query, pgSend(pgAnswer("f", "zz", "NULL", "f", "NULL"))), ok: false,
			msg: `postgres probe %s: malformed reply: WAL file name "zz"`},
		{name: "row of the wrong width", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgLoggedIn("off")), query, pgSend(pgAnswer("f"))), ok: false,
			msg: "postgres probe %s: malformed reply: data row of 7 bytes, want 5 columns"},
		{name: "no row", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgLoggedIn("off")), query, pgSend(pgMessage('C', []byte("SELECT 0\x00"))+pgReady)), ok: false,
			msg: "postgres probe %s: malformed reply: query returned no row"},
		{name: "endless parameters", health: h(config.RolePrimary, 0, false),
			server: script(pgSend(pgAuth(0, "") + strings.Repeat(pgParam("a", "b"), pgMaxLoginMessages))), ok: false,
			msg: "postgres probe %s: malformed reply: more than 64 messages before ReadyForQuery"},
		{name: "silent after login", health: h(config.RolePrimary, 0, false), timeout: 200 * time.Millisecond,
			server: script(pgSend(pgAuth(0, ""))), ok: false,
			msg: "postgres probe %s: read: i/o timeout"},
	})
}

// TestPostgresSessionTerminates: a logged-in probe ends with Terminate.
func TestPostgresSessionTerminates(t *testing.T) {
	after := make(chan []byte, 1)
	addr := serve(t, fakePgScript(t, []pgStep{pgRead(0, nil), pgSend(pgLoggedIn("on"))}, after))
	c, err := NewChecker(config.Health{Check: "postgres", User: "splicer", Database: "app", Role: config.RoleReplica})
	if err != nil {
		t.Fatal(err)
	}
	r := checkResult(t, c, addr, 0, true, "postgres probe "+addr.String()+": replica")
	if r.Role != config.RoleReplica {
		t.Errorf("Role %q", r.Role)
	}
	if got := <-after; !bytes.Equal(got, pgTerminate) {
		t.Fatalf("after the probe the server got %q, want Terminate", got)
	}
}

// TestPostgresPrimaryEpoch: the timeline of a primary is its Result's
// Epoch, which the arbiter ranks primaries by.
func TestPostgresPrimaryEpoch(t *testing.T) {
	addr := serve(t, fakePgScript(t, []pgStep{pgRead(0, nil), pgSend(pgLoggedIn("off")), pgRead('Q', wantQuery),
		pgSend(pgAnswer("f", "0000001A0000000000000005", "NULL", "f", "NULL"))}, nil))
	c, err := NewChecker(config.Health{Check: "postgres", User: "splicer", Database: "app", Role: config.RolePrimary})
	if err != nil {
		t.Fatal(err)
	}
	r := checkResult(t, c, addr, 0, true, "postgres probe "+addr.String()+": primary, timeline 26")
	if r.Role != config.RolePrimary || r.Epoch != 26 {
		t.Fatalf("Role %q Epoch %d, want primary 26", r.Role, r.Epoch)
	}
}

// scramServer answers the probe's SCRAM exchange with the server messages
// first and final make of the client's nonce, without checking its proof.
func scramServer(t *testing.T, first func(nonce string) string, final string, tail string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := readFrontend(c, 0); err != nil {
			return
		}
		io.WriteString(c, pgAuth(10, "SCRAM-SHA-256\x00\x00"))
		body, err := readFrontend(c, 'p')
		if err != nil {
			return
		}
		_, cf, _ := bytes.Cut(body, []byte("r="))
		io.WriteString(c, pgAuth(11, first(string(cf))))
		if _, err := readFrontend(c, 'p'); err != nil {
			return
		}
		if final != "" {
			io.WriteString(c, pgAuth(12, final))
		}
		io.WriteString(c, tail)
		_, _ = io.Copy(io.Discard, c)
	}
}

// TestPostgresSCRAMRefusals: a server that cannot prove it knows the
// password, or asks for more than the probe will do, is refused.
func TestPostgresSCRAMRefusals(t *testing.T) {
	t.Setenv("SPLICER_TEST_PG_PW", "pencil")
	h := config.Health{Check: "postgres", User: "splicer", Database: "app", Role: config.RolePrimary, Password: config.Secret{Env: "SPLICER_TEST_PG_PW"}}
	good := func(nonce string) string { return "r=" + nonce + "srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" }
	runProbeCases(t, []probeCase{
		{name: "skipped final", health: h, server: scramServer(t, good, "", pgLoggedIn("off")), ok: false,
			msg: "postgres probe %s: server skipped SCRAM's final message: it did not prove it knows the password"},
		{name: "wrong signature", health: h,
			server: scramServer(t, good, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", pgLoggedIn("off")), ok: false,
			msg: "postgres probe %s: SCRAM server signature does not match: the server does not know the password"},
		{name: "server error", health: h, server: scramServer(t, good, "e=invalid-proof", ""), ok: false,
			msg: `postgres probe %s: server refused SCRAM authentication: "invalid-proof"`},
		{name: "foreign nonce", health: h,
			server: scramServer(t, func(string) string { return "r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" }, "", ""), ok: false,
			msg: "postgres probe %s: malformed reply: SCRAM server nonce does not extend the probe's"},
		{name: "too many iterations", health: h,
			server: scramServer(t, func(n string) string { return "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999" }, "", ""), ok: false,
			msg: "postgres probe %s: server asks for 999999999 SCRAM iterations, above the probe's limit of 100000"},
		{name: "mandatory extension", health: h,
			server: scramServer(t, func(n string) string { return "m=x,r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" }, "", ""), ok: false,
			msg: "postgres probe %s: server requires a SCRAM extension the probe does not know"},
	})
}

// TestPostgresProbeSessionContext: the probe honours its timeout at every
// step of a login that stalls.
func TestPostgresProbeSessionContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	addr := serve(t, fakePgScript(t, []pgStep{pgRead(0, nil), pgSend(pgAuth(5, "salt"))}, nil))
	t.Setenv("SPLICER_TEST_PG_PW", "x")
	c, err := NewChecker(config.Health{Check: "postgres", User: "splicer", Database: "app", Password: config.Secret{Env: "SPLICER_TEST_PG_PW"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := c.Check(ctx, addr)
	if r.OK || r.Msg != "postgres probe "+addr.String()+": read: i/o timeout" || time.Since(start) > time.Second {
		t.Fatalf("Check = %+v after %v", r, time.Since(start))
	}
}
