package health

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/splicerlb/splicer/pkg/config"
)

// redisMaxLine bounds one reply line; a PING or AUTH reply is short.
const redisMaxLine = 4096

// redisCauses explains the error replies an operator meets most; any other
// error reply is reported as it is.
var redisCauses = map[string]string{
	"LOADING":    "server loading",
	"MASTERDOWN": "replica lost its master",
	"BUSY":       "server busy running a script",
	"NOAUTH":     "server needs a password (set health.password)",
	"WRONGPASS":  "password rejected",
}

// redis sends PING, after AUTH when a password is set, and wants +PONG.
type redis struct {
	password config.Secret
	// auth is the AUTH command, swapped whole when the password is read
	// again; it points to nil without a password.
	auth atomic.Pointer[[]byte]
}

// ReloadSecrets reads the password from its source and builds the AUTH
// command the next probe sends. The error names the source, never the
// value, and wraps ErrConfig.
func (p *redis) ReloadSecrets() error {
	pw, err := p.password.Read()
	if err != nil {
		return fmt.Errorf("health.password: %w: %w", err, ErrConfig)
	}
	var auth []byte
	if pw != nil {
		auth = redisCommand("AUTH", string(pw))
	}
	p.auth.Store(&auth)
	return nil
}

// redisCommand encodes args as a RESP array of bulk strings.
func redisCommand(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

var redisPing = redisCommand("PING")

func (p *redis) probe(ctx context.Context, addr netip.AddrPort) (string, error) {
	conn, release, err := dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer release()
	// AUTH and PING go in one write: one round trip, and a rejected AUTH
	// is reported from its own reply before PING's is read.
	auth := *p.auth.Load()
	req := append(append([]byte(nil), auth...), redisPing...)
	if _, err := conn.Write(req); err != nil {
		return "", failed(ctx, "write", err)
	}
	r := bufio.NewReaderSize(conn, redisMaxLine)
	if auth != nil {
		line, err := redisReadLine(ctx, r)
		if err != nil {
			return "", err
		}
		if line != "+OK" {
			return "", fmt.Errorf("AUTH %w", redisReplyError(line))
		}
	}
	line, err := redisReadLine(ctx, r)
	if err != nil {
		return "", err
	}
	if line != "+PONG" {
		return "", redisReplyError(line)
	}
	return "PONG", nil
}

// redisReadLine reads one CRLF-terminated reply line, without the CRLF.
func redisReadLine(ctx context.Context, r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("reply %s: line longer than %d bytes", quote(line), redisMaxLine)
	}
	if err != nil {
		if len(line) > 0 {
			return "", fmt.Errorf("%w after partial reply %s", failed(ctx, "read", err), quote(line))
		}
		return "", failed(ctx, "read", err)
	}
	return string(bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})), nil
}

// redisReplyError describes a reply other than the one wanted.
func redisReplyError(line string) error {
	if !strings.HasPrefix(line, "-") {
		return fmt.Errorf("reply %q: unexpected reply", line)
	}
	prefix, _, _ := strings.Cut(line[1:], " ")
	cause, ok := redisCauses[prefix]
	if !ok {
		cause = "error reply"
	}
	return fmt.Errorf("reply %q: %s", line, cause)
}
