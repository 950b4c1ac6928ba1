package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// MySQL initial handshake constants.
const (
	mysqlProtocol10 = 0x0a
	mysqlErrPacket  = 0xff
)

// probeMySQL reads the server greeting (Protocol::Handshake) and checks its
// protocol version; an ERR packet instead of a greeting ("Too many
// connections", "Host is blocked") means down. The probe sends nothing and
// closes after the greeting, which the server counts as a handshake error
// toward max_connect_errors for the balancer's address; client traffic
// through the balancer resets that count.
func probeMySQL(ctx context.Context, addr netip.AddrPort) (string, error) {
	conn, release, err := dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer release()
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return "", failed(ctx, "read", err)
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	switch {
	case n == 0 || n > maxReply:
		return "", fmt.Errorf("malformed greeting: packet length %d", n)
	case hdr[3] != 0:
		return "", fmt.Errorf("malformed greeting: sequence %d, want 0", hdr[3])
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(conn, payload); err != nil {
		return "", failed(ctx, "read", err)
	}
	switch payload[0] {
	case mysqlProtocol10:
		version, _, ok := bytes.Cut(payload[1:], []byte{0})
		if !ok {
			return "", errors.New("malformed greeting: unterminated server version")
		}
		return fmt.Sprintf("greeting protocol 10, server %s", quote(version)), nil
	case mysqlErrPacket:
		return "", mysqlError(payload)
	}
	return "", fmt.Errorf("greeting protocol version %d, want %d", payload[0], mysqlProtocol10)
}

// mysqlError decodes an ERR packet: 0xff, a little-endian error code, an
// optional '#' and five-character SQL state, and the message.
func mysqlError(payload []byte) error {
	if len(payload) < 3 {
		return fmt.Errorf("malformed error packet of %d bytes", len(payload))
	}
	code := int(payload[1]) | int(payload[2])<<8
	msg := payload[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		msg = msg[6:]
	}
	return fmt.Errorf("server error %d: %s", code, msg)
}
