package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// Bounds on what a PostgreSQL server may send a probe: messages before
// ReadyForQuery (a server sends about 15 ParameterStatus), and messages in
// answer to one query.
const (
	pgMaxLoginMessages = 64
	pgMaxQueryMessages = 32
)

// pgStatusQuery reads what a role probe needs in one round trip: whether
// the server is in recovery (a replica); a primary's current WAL file, whose
// first 8 hex digits are its timeline; and on a replica, whether everything
// received has been replayed, whether a WAL receiver runs (a row in
// pg_stat_wal_receiver, visible without privileges) and the seconds since
// the last replayed transaction. Every function is callable by any user.
const pgStatusQuery = `SELECT pg_is_in_recovery(),
 CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
 pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(),
 EXISTS (SELECT FROM pg_stat_wal_receiver),
 extract(epoch FROM now() - pg_last_xact_replay_timestamp())`

// pgSession is a probe's logged-in conversation with a PostgreSQL server,
// over a conn tied to ctx (see dial).
type pgSession struct {
	ctx    context.Context
	conn   net.Conn
	r      *bufio.Reader
	params map[string]string // ParameterStatus values
}

// session logs in, reads the role and ends the session.
func (p *postgres) session(ctx context.Context, s *pgSession) (seen, error) {
	method, err := s.login(p.user, p.password)
	if err != nil {
		return seen{}, err
	}
	// Terminate ends the session cleanly whatever comes next.
	defer func() { _, _ = s.conn.Write(pgTerminate) }()
	if !p.rule.reads() {
		return saw("authentication " + method + " succeeded"), nil
	}
	st, err := s.status(p.rule)
	if err != nil {
		return seen{}, err
	}
	return p.judge(st)
}

// pgStatus is a server's role as a probe read it.
type pgStatus struct {
	replica bool
	// timeline of a primary; 0 when not read.
	timeline uint64
	// lag of a replica, when measured: lagKnown false means it could not
	// be told (nothing replayed since start-up, and not streaming).
	measured, lagKnown bool
	lag                time.Duration
	streaming          bool
}

// judge turns a status into the probe's verdict.
func (p *postgres) judge(st pgStatus) (seen, error) {
	if !st.replica {
		what := "primary"
		if st.timeline != 0 {
			what += ", timeline " + strconv.FormatUint(st.timeline, 10)
		}
		if err := p.rule.accepts(config.RolePrimary, what); err != nil {
			return seen{}, err
		}
		return seen{detail: what, role: config.RolePrimary, epoch: st.timeline}, nil
	}
	what := "replica"
	if err := p.rule.accepts(config.RoleReplica, what); err != nil {
		return seen{}, err
	}
	if st.measured {
		switch {
		case !st.lagKnown:
			return seen{}, errors.New("replica, replay lag unknown: no transaction replayed since it started, and it is not streaming")
		case st.lag > p.rule.maxLag:
			return seen{}, fmt.Errorf("replica, replay lag %v above max_lag %v", st.lag, p.rule.maxLag)
		}
		what += ", replay lag " + st.lag.String()
		if !st.streaming {
			what += " (not streaming)"
		}
	}
	return seen{detail: what, role: config.RoleReplica}, nil
}

// login sends nothing (the caller sent the StartupMessage), answers the
// server's authentication request with the password and reads on to
// ReadyForQuery. It returns the method used ("trust", "password", "md5",
// "scram-sha-256"). An ErrorResponse at any point is the verdict: the
// server refused this session.
func (s *pgSession) login(user, password string) (string, error) {
	method := "trust"
	var sc *scram
	authenticated := false
	s.params = make(map[string]string)
	for range pgMaxLoginMessages {
		typ, body, err := pgReadMessage(s.ctx, s.r)
		if err != nil {
			return "", err
		}
		switch typ {
		case 'R':
			if authenticated {
				return "", errors.New("malformed reply: authentication request after AuthenticationOk")
			}
			if len(body) < 4 {
				return "", fmt.Errorf("malformed reply: authentication message of %d bytes", len(body))
			}
			code, data := binary.BigEndian.Uint32(body), body[4:]
			var reply []byte
			switch code {
			case 0:
				if sc != nil && !sc.verified {
					// Without the server's signature a server that never
					// knew the password could let the probe in.
					return "", errors.New("server skipped SCRAM's final message: it did not prove it knows the password")
				}
				authenticated = true
				continue
			case 3:
				method = "password"
				if password == "" {
					return "", errNeedPassword("a cleartext password")
				}
				reply = pgPasswordMessage([]byte(password + "\x00"))
			case 5:
				method = "md5"
				if password == "" {
					return "", errNeedPassword("an md5 password")
				}
				if len(data) != 4 {
					return "", fmt.Errorf("malformed reply: md5 salt of %d bytes", len(data))
				}
				reply = pgPasswordMessage(append([]byte(pgMD5(user, password, data)), 0))
			case 10:
				method = "scram-sha-256"
				if password == "" {
					return "", errNeedPassword("SCRAM-SHA-256")
				}
				if sc != nil {
					return "", errors.New("malformed reply: second SASL request")
				}
				if err := pgCheckMechanisms(data); err != nil {
					return "", err
				}
				var first []byte
				sc, first = newScram(password)
				reply = pgSASLInitial(first)
			case 11:
				if sc == nil || sc.final != nil {
					return "", errors.New("malformed reply: SASLContinue out of turn")
				}
				final, err := sc.answer(data)
				if err != nil {
					return "", err
				}
				reply = pgPasswordMessage(final)
			case 12:
				if sc == nil || sc.final == nil || sc.verified {
					return "", errors.New("malformed reply: SASLFinal out of turn")
				}
				if err := sc.verify(data); err != nil {
					return "", err
				}
				continue
			default:
				return "", fmt.Errorf("server asks for authentication %s, which the probe does not speak; "+
					"give the probe user trust, password, md5 or scram-sha-256 in pg_hba.conf", pgAuthName(code))
			}
			if _, err := s.conn.Write(reply); err != nil {
				return "", failed(s.ctx, "write", err)
			}
		case 'E':
			return "", pgSessionError(body)
		case 'N':
		case 'S':
			if !authenticated {
				return "", errors.New("malformed reply: ParameterStatus before AuthenticationOk")
			}
			k, v, err := pgParameter(body)
			if err != nil {
				return "", err
			}
			s.params[k] = v
		case 'K':
			if !authenticated {
				return "", errors.New("malformed reply: BackendKeyData before AuthenticationOk")
			}
		case 'Z':
			if !authenticated {
				return "", errors.New("malformed reply: ReadyForQuery before AuthenticationOk")
			}
			return method, nil
		default:
			return "", fmt.Errorf("malformed reply: message type %q during login", typ)
		}
	}
	return "", fmt.Errorf("malformed reply: more than %d messages before ReadyForQuery", pgMaxLoginMessages)
}

// errNeedPassword says the server wants a password the probe was not given.
func errNeedPassword(what string) error {
	return fmt.Errorf("server asks for %s: set health.password", what)
}

// status reads the server's role and, for a replica held to max_lag, its
// replay lag. PostgreSQL 14 and later report in_hot_standby at login, which
// spares a query when nothing more is needed; older servers, and a primary
// (whose timeline ranks it against other primaries) are asked.
func (s *pgSession) status(rule roleRule) (pgStatus, error) {
	switch s.params["in_hot_standby"] {
	case "on":
		if !rule.lagLimited() {
			return pgStatus{replica: true}, nil
		}
	case "off":
		if rule.want == config.RoleReplica {
			return pgStatus{}, nil // a primary: refused without more detail
		}
	}
	row, err := s.query(pgStatusQuery, 5)
	if err != nil {
		return pgStatus{}, err
	}
	var st pgStatus
	switch {
	case row[0] == nil:
		return pgStatus{}, errors.New("malformed reply: pg_is_in_recovery() is NULL")
	case *row[0] == "t":
		st.replica = true
	case *row[0] != "f":
		return pgStatus{}, fmt.Errorf("malformed reply: pg_is_in_recovery() is %q", *row[0])
	}
	if !st.replica {
		if row[1] == nil || len(*row[1]) != 24 {
			return pgStatus{}, fmt.Errorf("malformed reply: WAL file name %s", pgText(row[1]))
		}
		tl, err := strconv.ParseUint((*row[1])[:8], 16, 32)
		if err != nil || tl == 0 {
			return pgStatus{}, fmt.Errorf("malformed reply: WAL file name %s", pgText(row[1]))
		}
		st.timeline = tl
		return st, nil
	}
	if !rule.lagLimited() {
		return st, nil
	}
	st.measured = true
	st.streaming = row[3] != nil && *row[3] == "t"
	switch {
	case row[2] != nil && *row[2] == "t" && st.streaming:
		st.lagKnown = true // everything received is replayed
	case row[4] != nil:
		secs, err := strconv.ParseFloat(*row[4], 64)
		if err != nil {
			return pgStatus{}, fmt.Errorf("malformed reply: replay lag %q", *row[4])
		}
		st.lagKnown = true
		st.lag = max(0, time.Duration(secs*float64(time.Second))).Round(time.Millisecond)
	}
	return st, nil
}

// pgText renders a column for a message.
func pgText(v *string) string {
	if v == nil {
		return "NULL"
	}
	return strconv.Quote(*v)
}

// query runs sql with the simple query protocol and returns the first row,
// which must have cols columns (nil entries are NULLs), reading on to
// ReadyForQuery so the session stays in step.
func (s *pgSession) query(sql string, cols int) ([]*string, error) {
	msg := binary.BigEndian.AppendUint32([]byte{'Q'}, uint32(4+len(sql)+1))
	msg = append(append(msg, sql...), 0)
	if _, err := s.conn.Write(msg); err != nil {
		return nil, failed(s.ctx, "write", err)
	}
	var (
		row    []*string
		qerr   error
		gotRow bool
	)
	for range pgMaxQueryMessages {
		typ, body, err := pgReadMessage(s.ctx, s.r)
		if err != nil {
			return nil, err
		}
		switch typ {
		case 'D':
			if gotRow {
				continue
			}
			gotRow = true
			if row, err = pgDataRow(body, cols); err != nil {
				return nil, err
			}
		case 'E':
			qerr = pgSessionError(body)
		case 'Z':
			switch {
			case qerr != nil:
				return nil, fmt.Errorf("query: %w", qerr)
			case !gotRow:
				return nil, errors.New("malformed reply: query returned no row")
			}
			return row, nil
		case 'T', 'C', 'I', 'N', 'S', 'A':
		default:
			return nil, fmt.Errorf("malformed reply: message type %q in a query's answer", typ)
		}
	}
	return nil, fmt.Errorf("malformed reply: more than %d messages in a query's answer", pgMaxQueryMessages)
}

// pgDataRow decodes a DataRow of cols columns: a count, then per column a
// length (-1 for NULL) and the text.
func pgDataRow(body []byte, cols int) ([]*string, error) {
	if len(body) < 2 || int(binary.BigEndian.Uint16(body)) != cols {
		return nil, fmt.Errorf("malformed reply: data row of %d bytes, want %d columns", len(body), cols)
	}
	body = body[2:]
	row := make([]*string, cols)
	for i := range row {
		if len(body) < 4 {
			return nil, fmt.Errorf("malformed reply: data row cut in column %d", i)
		}
		n := int32(binary.BigEndian.Uint32(body))
		body = body[4:]
		if n == -1 {
			continue
		}
		if n < 0 || int(n) > len(body) {
			return nil, fmt.Errorf("malformed reply: column %d of length %d in a row of %d bytes", i, n, len(body))
		}
		v := string(body[:n])
		row[i] = &v
		body = body[n:]
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("malformed reply: %d bytes after the last column", len(body))
	}
	return row, nil
}

// pgSessionError describes an ErrorResponse that refused the session or a
// query: in a logged-in probe every error is down.
func pgSessionError(body []byte) error {
	fields, err := pgErrorFields(body)
	if err != nil {
		return err
	}
	severity := fields['V']
	if severity == "" {
		severity = fields['S']
	}
	code := fields['C']
	if code == "" {
		return errors.New("malformed reply: error without SQLSTATE")
	}
	return fmt.Errorf("server error %s (%s): %s", code, severity, fields['M'])
}

// pgParameter decodes a ParameterStatus: a name and a value, each ended by
// a NUL.
func pgParameter(body []byte) (string, string, error) {
	k, rest, ok := bytes.Cut(body, []byte{0})
	v, tail, ok2 := bytes.Cut(rest, []byte{0})
	if !ok || !ok2 || len(tail) != 0 {
		return "", "", errors.New("malformed reply: ParameterStatus")
	}
	return string(k), string(v), nil
}

// pgCheckMechanisms requires SCRAM-SHA-256 among the SASL mechanisms the
// server offers (a list of NUL-terminated names ended by an empty one).
func pgCheckMechanisms(data []byte) error {
	var offered []string
	for len(data) > 0 && data[0] != 0 {
		name, rest, ok := bytes.Cut(data, []byte{0})
		if !ok {
			return errors.New("malformed reply: unterminated SASL mechanism")
		}
		if string(name) == "SCRAM-SHA-256" {
			return nil
		}
		offered = append(offered, string(name))
		data = rest
	}
	return fmt.Errorf("server offers SASL mechanisms %q; the probe speaks SCRAM-SHA-256 (without channel binding)", strings.Join(offered, ", "))
}

// pgPasswordMessage frames a PasswordMessage (also SASLResponse) body.
func pgPasswordMessage(body []byte) []byte {
	msg := binary.BigEndian.AppendUint32([]byte{'p'}, uint32(4+len(body)))
	return append(msg, body...)
}

// pgSASLInitial frames a SASLInitialResponse choosing SCRAM-SHA-256.
func pgSASLInitial(first []byte) []byte {
	body := append([]byte("SCRAM-SHA-256\x00"), binary.BigEndian.AppendUint32(nil, uint32(len(first)))...)
	return pgPasswordMessage(append(body, first...))
}

// pgMD5 is PostgreSQL's md5 answer: "md5" followed by
// md5(md5(password + user) + salt) in hex.
func pgMD5(user, password string, salt []byte) string {
	inner := md5.Sum([]byte(password + user))
	h := hex.EncodeToString(inner[:])
	outer := md5.Sum(append([]byte(h), salt...))
	return "md5" + hex.EncodeToString(outer[:])
}
