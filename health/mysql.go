package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// MySQL protocol constants ("Connection Phase" of the MySQL and MariaDB
// client/server protocol).
const (
	mysqlProtocol10 = 0x0a
	mysqlOK         = 0x00
	mysqlAuthSwitch = 0xfe
	mysqlErrPacket  = 0xff

	// Capability flags. CLIENT_LONG_PASSWORD is CLIENT_MYSQL to MariaDB:
	// set, it tells the server not to expect MariaDB's extended
	// capabilities, which the probe leaves zero.
	mysqlLongPassword     = 1 << 0  // CLIENT_LONG_PASSWORD
	mysqlProtocol41       = 1 << 9  // CLIENT_PROTOCOL_41
	mysqlSecureConnection = 1 << 15 // CLIENT_SECURE_CONNECTION
	mysqlPluginAuth       = 1 << 19 // CLIENT_PLUGIN_AUTH

	mysqlUTF8MB4 = 45 // utf8mb4_general_ci, known to every 5.5.3+ server
	// mysqlNativePassword is the plugin the empty auth response is for;
	// an account on another plugin gets an AuthSwitchRequest answered
	// the same way.
	mysqlNativePassword = "mysql_native_password"

	// ERR codes that refuse these credentials, which only a server that
	// runs sessions gets far enough to say. MariaDB answers a login
	// without a password for an unknown user with 1698.
	mysqlDBAccessDenied       = 1044 // ER_DBACCESS_DENIED_ERROR
	mysqlAccessDenied         = 1045 // ER_ACCESS_DENIED_ERROR
	mysqlAccessDeniedNoPasswd = 1698 // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
)

// mysqlQuit is COM_QUIT, a command of its own and so sequence 0: the server
// ends the session as a clean disconnect, not an aborted connection.
var mysqlQuit = []byte{1, 0, 0, 0, 1}

// mysql logs in as user without a password and quits.
//
// Why log in: MySQL and MariaDB count a connection that ends during the
// handshake (before the client's HandshakeResponse is judged) as a connect
// error of its client host, and block that host once max_connect_errors
// of them pile up (100 by default in MariaDB) until FLUSH HOSTS. Only a
// successful login clears the count, so a probe that hung up after the
// greeting would take an idle balancer's address there in minutes (in 200
// s at a 2 s interval), and then every client through it is refused. A
// completed login, even one refused for its credentials, is no connect
// error: the probe finishes the handshake as HAProxy's "mysql-check user"
// does, and sends COM_QUIT after OK so the server logs a clean disconnect.
//
// Verdicts: up on an OK packet, or on an access denied ERR (1044, 1045,
// 1698): the server runs sessions, and the probe needs no password. The
// message of a refusal asks for the account all the same, since the server
// logs each one as a warning and counts it in Aborted_connects. Down on any
// other ERR (1040 too many connections, 1129 host blocked, 1053 shutdown in
// progress, ...), on a greeting that is not protocol 10 with
// CLIENT_PROTOCOL_41, and on anything malformed.
type mysql struct {
	user string
}

func (p *mysql) probe(ctx context.Context, addr netip.AddrPort) (string, error) {
	conn, release, err := dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer release()
	payload, err := mysqlReadPacket(ctx, conn, "greeting", 0)
	if err != nil {
		return "", err
	}
	version, caps, err := mysqlGreeting(payload)
	if err != nil {
		return "", err
	}
	if _, err := conn.Write(mysqlLogin(p.user, caps&mysqlPluginAuth != 0)); err != nil {
		return "", failed(ctx, "write", err)
	}
	reply, err := mysqlReadPacket(ctx, conn, "reply", 2)
	if err != nil {
		return "", err
	}
	if reply[0] == mysqlAuthSwitch {
		// The account uses another plugin (caching_sha2_password, the
		// default of MySQL 8): an account without a password answers
		// that plugin's challenge with an empty response too. Only one
		// switch is answered; a second falls through as unexpected.
		if _, err := conn.Write([]byte{0, 0, 0, 3}); err != nil {
			return "", failed(ctx, "write", err)
		}
		if reply, err = mysqlReadPacket(ctx, conn, "reply", 4); err != nil {
			return "", err
		}
	}
	switch reply[0] {
	case mysqlOK:
		_, _ = conn.Write(mysqlQuit)
		return fmt.Sprintf("server %s: login as %q succeeded", quote(version), p.user), nil
	case mysqlErrPacket:
		code, msg, err := mysqlParseError(reply)
		if err != nil {
			return "", err
		}
		switch code {
		case mysqlDBAccessDenied, mysqlAccessDenied, mysqlAccessDeniedNoPasswd:
			return fmt.Sprintf("server %s answers sessions: error %d: %s; create user %q without a password for the probe",
				quote(version), code, msg, p.user), nil
		}
		return "", fmt.Errorf("server error %d: %s", code, msg)
	}
	return "", fmt.Errorf("malformed reply: packet type 0x%02x after login", reply[0])
}

// mysqlReadPacket reads one packet, which must carry sequence seq, and
// returns its payload, never empty. what names the packet in errors.
func mysqlReadPacket(ctx context.Context, r io.Reader, what string, seq byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, failed(ctx, "read", err)
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	switch {
	case n == 0 || n > maxReply:
		return nil, fmt.Errorf("malformed %s: packet length %d", what, n)
	case hdr[3] != seq:
		return nil, fmt.Errorf("malformed %s: sequence %d, want %d", what, hdr[3], seq)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, failed(ctx, "read", err)
	}
	return payload, nil
}

// mysqlGreeting decodes a Protocol::HandshakeV10 (or the ERR packet a
// server sends instead, "Too many connections", "Host is blocked") into
// the server version and capability flags. After the version come a
// connection id (4 bytes), the first 8 bytes of the scramble, a filler and
// the low 16 capability bits; the high 16 follow a character set and the
// status flags, and only servers from 4.1 on send them.
func mysqlGreeting(payload []byte) (version []byte, caps uint32, err error) {
	switch payload[0] {
	case mysqlProtocol10:
	case mysqlErrPacket:
		code, msg, err := mysqlParseError(payload)
		if err != nil {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("server error %d: %s", code, msg)
	default:
		return nil, 0, fmt.Errorf("greeting protocol version %d, want %d", payload[0], mysqlProtocol10)
	}
	version, rest, ok := bytes.Cut(payload[1:], []byte{0})
	if !ok {
		return nil, 0, errors.New("malformed greeting: unterminated server version")
	}
	const lowCaps, highCaps = 13, 18 // offsets in rest
	if len(rest) < lowCaps+2 {
		return nil, 0, fmt.Errorf("malformed greeting: %d bytes after the server version, want at least %d", len(rest), lowCaps+2)
	}
	caps = uint32(binary.LittleEndian.Uint16(rest[lowCaps:]))
	if len(rest) >= highCaps+2 {
		caps |= uint32(binary.LittleEndian.Uint16(rest[highCaps:])) << 16
	}
	if caps&mysqlProtocol41 == 0 {
		return nil, 0, fmt.Errorf("server %s lacks CLIENT_PROTOCOL_41 (MySQL 4.1 or later needed)", quote(version))
	}
	return version, caps, nil
}

// mysqlLogin builds the HandshakeResponse41 packet (sequence 1) for user
// with an empty auth response, naming mysql_native_password as its plugin
// when the server offers CLIENT_PLUGIN_AUTH.
func mysqlLogin(user string, pluginAuth bool) []byte {
	caps := uint32(mysqlLongPassword | mysqlProtocol41 | mysqlSecureConnection)
	if pluginAuth {
		caps |= mysqlPluginAuth
	}
	p := []byte{0, 0, 0, 1} // length, set below, and sequence
	p = binary.LittleEndian.AppendUint32(p, caps)
	p = binary.LittleEndian.AppendUint32(p, maxReply) // the largest packet the probe reads
	p = append(p, mysqlUTF8MB4)
	p = append(p, make([]byte, 23)...) // reserved
	p = append(p, user...)
	p = append(p, 0, 0) // user terminator, auth response length 0
	if pluginAuth {
		p = append(p, mysqlNativePassword...)
		p = append(p, 0)
	}
	n := len(p) - 4
	p[0], p[1], p[2] = byte(n), byte(n>>8), byte(n>>16)
	return p
}

// mysqlParseError decodes an ERR packet: 0xff, a little-endian error code,
// an optional '#' and five-character SQL state, and the message.
func mysqlParseError(payload []byte) (code int, msg []byte, err error) {
	if len(payload) < 3 {
		return 0, nil, fmt.Errorf("malformed error packet of %d bytes", len(payload))
	}
	code = int(binary.LittleEndian.Uint16(payload[1:]))
	msg = payload[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		msg = msg[6:]
	}
	return code, msg, nil
}
