package health

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
)

// mysqlNative is mysql_native_password's answer to a scramble:
// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))); empty for an
// empty password.
func mysqlNative(password string, scramble []byte) []byte {
	if password == "" {
		return nil
	}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	h3 := sha1.Sum(append(append([]byte(nil), scramble...), h2[:]...))
	subtle.XORBytes(h1[:], h1[:], h3[:])
	return h1[:]
}

// mysqlSHA2 is caching_sha2_password's fast-path answer to a scramble:
// SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble).
func mysqlSHA2(password string, scramble []byte) []byte {
	h1 := sha256.Sum256([]byte(password))
	h2 := sha256.Sum256(h1[:])
	h3 := sha256.Sum256(append(h2[:], scramble...))
	subtle.XORBytes(h1[:], h1[:], h3[:])
	return h1[:]
}

// mysqlMaxRows bounds the rows of a probe query's result the probe reads.
const mysqlMaxRows = 16

// mysqlUnknownVariable is ER_UNKNOWN_SYSTEM_VARIABLE, what MySQL before
// 5.7.8 answers about super_read_only.
const mysqlUnknownVariable = 1193

// role reads read_only (and on MySQL super_read_only, which MariaDB lacks)
// on a logged-in conn: both off is a primary, either on a replica.
func (p *mysql) role(ctx context.Context, conn net.Conn, version []byte) (seen, error) {
	vars := []string{"read_only", "super_read_only"}
	if strings.Contains(string(version), "MariaDB") {
		vars = vars[:1]
	}
	row, err := mysqlQueryRow(ctx, conn, vars)
	var se *mysqlServerError
	if errors.As(err, &se) && se.code == mysqlUnknownVariable && len(vars) == 2 {
		vars = vars[:1]
		row, err = mysqlQueryRow(ctx, conn, vars)
	}
	if err != nil {
		return seen{}, err
	}
	role, set := config.RolePrimary, "read_only=0"
	for i, v := range row {
		on, err := mysqlFlag(vars[i], v)
		if err != nil {
			return seen{}, err
		}
		if on {
			role, set = config.RoleReplica, vars[i]+"=1"
			break
		}
	}
	what := role + " (" + set + ")"
	if err := p.rule.accepts(role, what); err != nil {
		return seen{}, err
	}
	return seen{detail: fmt.Sprintf("server %s: %s", resp.Quote(version), what), role: role}, nil
}

// mysqlFlag reads a boolean variable as the text protocol shows it.
func mysqlFlag(name string, v *string) (bool, error) {
	switch {
	case v == nil:
		return false, fmt.Errorf("malformed reply: @@global.%s is NULL", name)
	case *v == "0" || strings.EqualFold(*v, "OFF"):
		return false, nil
	case *v == "1" || strings.EqualFold(*v, "ON"):
		return true, nil
	}
	return false, fmt.Errorf("malformed reply: @@global.%s is %q", name, *v)
}

// mysqlServerError is an ERR packet in answer to a query.
type mysqlServerError struct {
	code int
	msg  []byte
}

func (e *mysqlServerError) Error() string {
	return fmt.Sprintf("query: server error %d: %s", e.code, e.msg)
}

// mysqlQueryRow runs SELECT @@global.<var>, ... with COM_QUERY and returns
// the first row of the text result set, one value per variable (nil for
// NULL). The probe does not ask for CLIENT_DEPRECATE_EOF, so EOF packets
// end the column definitions and the rows.
func mysqlQueryRow(ctx context.Context, conn net.Conn, vars []string) ([]*string, error) {
	sql := "SELECT @@global." + strings.Join(vars, ", @@global.")
	n := len(sql) + 1
	cmd := append([]byte{byte(n), byte(n >> 8), byte(n >> 16), 0, 0x03}, sql...)
	if _, err := conn.Write(cmd); err != nil {
		return nil, failed(ctx, "write", err)
	}
	seq := byte(1)
	next := func(what string) ([]byte, error) {
		p, err := mysqlReadPacket(ctx, conn, what, seq)
		seq++
		return p, err
	}
	p, err := next("result")
	if err != nil {
		return nil, err
	}
	switch p[0] {
	case mysqlErrPacket:
		code, msg, err := mysqlParseError(p)
		if err != nil {
			return nil, err
		}
		return nil, &mysqlServerError{code: code, msg: msg}
	case mysqlOK:
		return nil, errors.New("malformed reply: query returned no result set")
	}
	cols, rest, ok := mysqlLenEnc(p)
	if !ok || len(rest) != 0 || cols != uint64(len(vars)) {
		return nil, fmt.Errorf("malformed reply: result of %s columns, want %d", resp.Quote(p), len(vars))
	}
	for range cols {
		if p, err = next("column definition"); err != nil {
			return nil, err
		}
		if mysqlIsEOF(p) || p[0] == mysqlErrPacket {
			return nil, errors.New("malformed reply: result ended among its column definitions")
		}
	}
	if p, err = next("result"); err != nil {
		return nil, err
	}
	if !mysqlIsEOF(p) {
		return nil, fmt.Errorf("malformed reply: packet type 0x%02x after the column definitions, want EOF", p[0])
	}
	var row []*string
	for range mysqlMaxRows {
		if p, err = next("row"); err != nil {
			return nil, err
		}
		switch {
		case mysqlIsEOF(p):
			if row == nil {
				return nil, errors.New("malformed reply: query returned no row")
			}
			return row, nil
		case p[0] == mysqlErrPacket:
			code, msg, err := mysqlParseError(p)
			if err != nil {
				return nil, err
			}
			return nil, &mysqlServerError{code: code, msg: msg}
		case row == nil:
			if row, err = mysqlRow(p, len(vars)); err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("malformed reply: more than %d rows", mysqlMaxRows)
}

// mysqlIsEOF tells an EOF packet from a row: a row starting with 0xfe
// carries an 8-byte length, so it is at least 9 bytes long.
func mysqlIsEOF(p []byte) bool { return p[0] == mysqlAuthSwitch && len(p) < 9 }

// mysqlRow decodes a text protocol row of n values.
func mysqlRow(p []byte, n int) ([]*string, error) {
	row := make([]*string, n)
	for i := range row {
		if len(p) == 0 {
			return nil, fmt.Errorf("malformed reply: row cut at column %d", i)
		}
		if p[0] == 0xfb { // NULL
			p = p[1:]
			continue
		}
		size, rest, ok := mysqlLenEnc(p)
		if !ok || size > uint64(len(rest)) {
			return nil, fmt.Errorf("malformed reply: row column %d", i)
		}
		v := string(rest[:size])
		row[i] = &v
		p = rest[size:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("malformed reply: %d bytes after the row's last column", len(p))
	}
	return row, nil
}

// mysqlLenEnc decodes a length-encoded integer at the start of p, which
// is not empty (a packet, or a row with columns left).
func mysqlLenEnc(p []byte) (uint64, []byte, bool) {
	var size int
	switch p[0] {
	case 0xfc:
		size = 2
	case 0xfd:
		size = 3
	case 0xfe:
		size = 8
	case 0xfb, 0xff:
		return 0, nil, false
	default:
		return uint64(p[0]), p[1:], true
	}
	if len(p) < 1+size {
		return 0, nil, false
	}
	var n uint64
	for i := size; i >= 1; i-- {
		n = n<<8 | uint64(p[i])
	}
	return n, p[1+size:], true
}
