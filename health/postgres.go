package health

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// PostgreSQL protocol constants (protocol 3.0, "Message Formats").
const (
	pgProtocol3 = 3 << 16
	// pgMaxNotices bounds the NoticeResponses skipped before the verdict.
	pgMaxNotices = 4
)

// pgStartup builds a StartupMessage for user and database ("" lets the
// server default it to the user name).
func pgStartup(user, database string) []byte {
	var body bytes.Buffer
	param := func(k, v string) {
		body.WriteString(k)
		body.WriteByte(0)
		body.WriteString(v)
		body.WriteByte(0)
	}
	param("user", user)
	if database != "" {
		param("database", database)
	}
	param("application_name", "splicer-health")
	body.WriteByte(0)
	msg := binary.BigEndian.AppendUint32(nil, uint32(8+body.Len()))
	msg = binary.BigEndian.AppendUint32(msg, pgProtocol3)
	return append(msg, body.Bytes()...)
}

// pgTerminate ends a session politely after AuthenticationOk.
var pgTerminate = []byte{'X', 0, 0, 0, 4}

// pgAuthNames names the authentication requests of an 'R' message.
var pgAuthNames = map[uint32]string{
	0:  "ok",
	2:  "kerberos v5",
	3:  "cleartext password",
	5:  "md5 password",
	7:  "gssapi",
	9:  "sspi",
	10: "sasl",
}

// postgres probes a PostgreSQL server in one of two ways.
//
// Without a password and without a role to check, it asks for a session
// and judges the first reply: an authentication request, or a refusal of
// these credentials, proves a postmaster that runs sessions, so the probe
// needs no password.
//
// With a password or a role, it logs in (trust, cleartext password, md5 or
// SCRAM-SHA-256), reads the role the server reports, measures a replica's
// lag when max_lag asks for it, and ends the session with Terminate; any
// error, a refused password included, is down. See pgSession.
type postgres struct {
	startup  []byte
	user     string
	password string
	rule     roleRule
}

func newPostgres(user, database, password string, rule roleRule) *postgres {
	return &postgres{startup: pgStartup(user, database), user: user, password: password, rule: rule}
}

func (p *postgres) converse(ctx context.Context, conn net.Conn) (seen, error) {
	if _, err := conn.Write(p.startup); err != nil {
		return seen{}, failed(ctx, "write", err)
	}
	r := bufio.NewReader(conn)
	if p.password != "" || p.rule.reads() {
		return p.session(ctx, &pgSession{ctx: ctx, conn: conn, r: r})
	}
	for range pgMaxNotices + 1 {
		typ, body, err := pgReadMessage(ctx, r)
		if err != nil {
			return seen{}, err
		}
		switch typ {
		case 'R':
			if len(body) < 4 {
				return seen{}, fmt.Errorf("malformed reply: authentication message of %d bytes", len(body))
			}
			code := binary.BigEndian.Uint32(body)
			if code == 0 {
				// Trusted: the session is open; a Terminate spares the
				// server an "unexpected EOF" in its log.
				_, _ = conn.Write(pgTerminate)
			}
			return saw("authentication " + pgAuthName(code)), nil
		case 'E':
			detail, err := pgJudgeError(body)
			return saw(detail), err
		case 'N':
			continue
		default:
			return seen{}, fmt.Errorf("malformed reply: message type %q", typ)
		}
	}
	return seen{}, fmt.Errorf("malformed reply: more than %d notices before authentication", pgMaxNotices)
}

// pgAuthName names an authentication request code.
func pgAuthName(code uint32) string {
	if name, ok := pgAuthNames[code]; ok {
		return name
	}
	return fmt.Sprintf("method %d", code)
}

// pgReadMessage reads one backend message: a type byte, a length that
// counts itself, and the body.
func pgReadMessage(ctx context.Context, r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, failed(ctx, "read", err)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > maxReply {
		return 0, nil, fmt.Errorf("malformed reply: type %q with length %d", hdr[0], n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, failed(ctx, "read", err)
	}
	return hdr[0], body, nil
}

// pgJudgeError decides on an ErrorResponse. Errors about the credentials
// asked for mean the server is up and answering sessions: SQLSTATE class 28
// (no pg_hba.conf entry, password failed), 3D000 (no such database) and
// 42501 (no CONNECT privilege). Every other error (57P03 starting up or
// shutting down, 53300 too many connections, ...) means new sessions are
// refused, so the backend is down.
func pgJudgeError(body []byte) (string, error) {
	fields, err := pgErrorFields(body)
	if err != nil {
		return "", err
	}
	code := fields['C']
	if code == "" {
		return "", errors.New("malformed reply: error without SQLSTATE")
	}
	severity := fields['V'] // non-localized, 9.6 and later
	if severity == "" {
		severity = fields['S']
	}
	if strings.HasPrefix(code, "28") || code == "3D000" || code == "42501" {
		return fmt.Sprintf("server answers sessions: error %s (%s): %s", code, severity, fields['M']), nil
	}
	return "", fmt.Errorf("server error %s (%s): %s", code, severity, fields['M'])
}

// pgErrorFields parses the fields of an ErrorResponse or NoticeResponse: a
// type byte and a NUL-terminated string each, ended by a zero byte.
func pgErrorFields(body []byte) (map[byte]string, error) {
	fields := make(map[byte]string)
	for len(body) > 0 && body[0] != 0 {
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			return nil, errors.New("malformed reply: unterminated error field")
		}
		fields[body[0]] = string(body[1 : 1+end])
		body = body[2+end:]
	}
	if len(body) == 0 {
		return nil, errors.New("malformed reply: unterminated error fields")
	}
	return fields, nil
}
