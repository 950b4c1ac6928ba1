package realdb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// PgQuery opens a session at addr as the trusted superuser "splicer" on
// database postgres (through a balancer, say), runs sql and returns the
// first column of the first row as text, then ends the session. It speaks
// just enough of the protocol for that, so a test can open hundreds of
// sessions without starting psql each time.
func PgQuery(addr netip.AddrPort, sql string) (string, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var body []byte
	for _, kv := range [][2]string{{"user", "splicer"}, {"database", "postgres"}} {
		body = append(append(append(append(body, kv[0]...), 0), kv[1]...), 0)
	}
	body = append(body, 0)
	startup := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	startup = binary.BigEndian.AppendUint32(startup, 3<<16)
	if _, err := c.Write(append(startup, body...)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	if err := pgUntilReady(r, nil); err != nil {
		return "", err
	}
	q := binary.BigEndian.AppendUint32([]byte{'Q'}, uint32(4+len(sql)+1))
	if _, err := c.Write(append(append(q, sql...), 0)); err != nil {
		return "", err
	}
	var value *string
	if err := pgUntilReady(r, &value); err != nil {
		return "", err
	}
	_, _ = c.Write([]byte{'X', 0, 0, 0, 4})
	if value == nil {
		return "", fmt.Errorf("%q returned no value", sql)
	}
	return *value, nil
}

// pgUntilReady reads messages up to ReadyForQuery; an ErrorResponse is an
// error; the first column of the first DataRow lands in *value when value
// is not nil.
func pgUntilReady(r *bufio.Reader, value **string) error {
	var failure error
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n < 4 || n > 1<<20 {
			return fmt.Errorf("message %q of length %d", hdr[0], n)
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		switch hdr[0] {
		case 'E':
			failure = fmt.Errorf("server error: %q", body)
		case 'R':
			if binary.BigEndian.Uint32(body) != 0 {
				return fmt.Errorf("authentication %d requested; the test user is trusted", binary.BigEndian.Uint32(body))
			}
		case 'D':
			if value != nil && *value == nil && len(body) >= 6 {
				if l := int32(binary.BigEndian.Uint32(body[2:])); l >= 0 && int(l) <= len(body)-6 {
					v := string(body[6 : 6+l])
					*value = &v
				}
			}
		case 'Z':
			return failure
		}
	}
}
