package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/splicerlb/splicer/pkg/resp"
)

// MySQL protocol constants ("Connection Phase" of the MySQL and MariaDB
// client/server protocol).
const (
	mysqlProtocol10 = 0x0a
	mysqlOK         = 0x00
	mysqlMoreData   = 0x01 // AuthMoreData
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
	// mysqlNativePassword is the plugin the login's auth response is for;
	// an account on another plugin gets an AuthSwitchRequest.
	mysqlNativePassword = "mysql_native_password"
	mysqlCachingSHA2    = "caching_sha2_password"
	// mysqlScrambleLen is the length of the scramble both plugins hash
	// the password with.
	mysqlScrambleLen = 20

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

// mysql logs in as user and quits; with a role to check, it reads the
// server's read_only flags in between.
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
// Verdicts: up on an OK packet. Without a password and without a role, an
// access denied ERR (1044, 1045, 1698) is up too: the server runs
// sessions, and the probe needs no password; the message of a refusal asks
// for the account all the same, since the server logs each one as a
// warning and counts it in Aborted_connects. With a password or a role the
// probe must get in, so a refusal is down. Down on any other ERR (1040 too
// many connections, 1129 host blocked, 1053 shutdown in progress, ...), on
// a greeting that is not protocol 10 with CLIENT_PROTOCOL_41, and on
// anything malformed.
//
// Passwords: mysql_native_password, and caching_sha2_password's fast path
// (the server holds the account in its cache). Its full authentication
// sends the password itself, which MySQL allows only over TLS or encrypted
// with the server's RSA key fetched over the same unauthenticated channel;
// the probe does neither and says so.
type mysql struct {
	user     string
	password string
	rule     roleRule
}

func (p *mysql) converse(ctx context.Context, conn net.Conn) (seen, error) {
	payload, err := mysqlReadPacket(ctx, conn, "greeting", 0)
	if err != nil {
		return seen{}, err
	}
	hello, err := mysqlGreeting(payload)
	if err != nil {
		return seen{}, err
	}
	version := resp.Quote(hello.version)
	if p.password != "" && len(hello.scramble) < mysqlScrambleLen {
		return seen{}, fmt.Errorf("server %s sends a %d-byte scramble; a password login needs %d", version, len(hello.scramble), mysqlScrambleLen)
	}
	auth := mysqlNative(p.password, hello.scramble)
	if _, err := conn.Write(mysqlLogin(p.user, auth, hello.caps&mysqlPluginAuth != 0)); err != nil {
		return seen{}, failed(ctx, "write", err)
	}
	reply, err := p.authenticate(ctx, conn)
	if err != nil {
		return seen{}, err
	}
	switch reply[0] {
	case mysqlOK:
		defer func() { _, _ = conn.Write(mysqlQuit) }()
		if !p.rule.reads() {
			return saw(fmt.Sprintf("server %s: login as %q succeeded", version, p.user)), nil
		}
		return p.role(ctx, conn, hello.version)
	case mysqlErrPacket:
		code, msg, err := mysqlParseError(reply)
		if err != nil {
			return seen{}, err
		}
		switch code {
		case mysqlDBAccessDenied, mysqlAccessDenied, mysqlAccessDeniedNoPasswd:
			if p.password == "" && !p.rule.reads() {
				return saw(fmt.Sprintf("server %s answers sessions: error %d: %s; create user %q without a password for the probe",
					version, code, msg, p.user)), nil
			}
			how := "check health.password"
			if p.password == "" {
				how = "the role check must log in: create the user without a password, or set health.password"
			}
			return seen{}, fmt.Errorf("server %s refused the login: error %d: %s; %s", version, code, msg, how)
		}
		return seen{}, fmt.Errorf("server error %d: %s", code, msg)
	}
	return seen{}, fmt.Errorf("malformed reply: packet type 0x%02x after login", reply[0])
}

// authenticate reads the server's answers to the login, answering at most
// one auth switch and caching_sha2_password's fast-auth result, and returns
// the packet that ends the login: OK, ERR, or something unexpected.
func (p *mysql) authenticate(ctx context.Context, conn net.Conn) ([]byte, error) {
	seq := byte(2)
	reply, err := mysqlReadPacket(ctx, conn, "reply", seq)
	if err != nil {
		return nil, err
	}
	switched, moreData := false, false
	for {
		switch {
		case reply[0] == mysqlAuthSwitch && !switched && !moreData:
			// The account uses another plugin (caching_sha2_password, the
			// default of MySQL 8), or the server wants a fresh scramble.
			switched = true
			auth, err := p.switchResponse(reply)
			if err != nil {
				return nil, err
			}
			resp := append([]byte{byte(len(auth)), byte(len(auth) >> 8), 0, seq + 1}, auth...)
			if _, err := conn.Write(resp); err != nil {
				return nil, failed(ctx, "write", err)
			}
			seq += 2
		case reply[0] == mysqlMoreData && !moreData && p.password != "":
			// caching_sha2_password: 3 is fast authentication done, and
			// the OK packet follows; 4 asks for the password itself.
			moreData = true
			switch {
			case len(reply) == 2 && reply[1] == 3:
				seq++
			case len(reply) == 2 && reply[1] == 4:
				return nil, errors.New("caching_sha2_password wants full authentication, which needs TLS or the server's RSA key; " +
					"use mysql_native_password for the probe account, or log in once with a client so the server caches it")
			default:
				return nil, fmt.Errorf("malformed reply: auth data %s", resp.Quote(reply))
			}
		default:
			return reply, nil
		}
		if reply, err = mysqlReadPacket(ctx, conn, "reply", seq); err != nil {
			return nil, err
		}
	}
}

// switchResponse answers an AuthSwitchRequest (0xfe, the plugin's name, its
// data): without a password an empty response, whatever the plugin.
func (p *mysql) switchResponse(req []byte) ([]byte, error) {
	plugin, data, ok := bytes.Cut(req[1:], []byte{0})
	if !ok {
		return nil, errors.New("malformed reply: auth switch without a plugin name")
	}
	if p.password == "" {
		return nil, nil
	}
	data = bytes.TrimSuffix(data, []byte{0})
	if len(data) < mysqlScrambleLen {
		return nil, fmt.Errorf("malformed reply: auth switch scramble of %d bytes", len(data))
	}
	switch string(plugin) {
	case mysqlNativePassword:
		return mysqlNative(p.password, data[:mysqlScrambleLen]), nil
	case mysqlCachingSHA2:
		return mysqlSHA2(p.password, data[:mysqlScrambleLen]), nil
	}
	return nil, fmt.Errorf("the account uses plugin %s, which the probe does not speak; use mysql_native_password or caching_sha2_password", resp.Quote(plugin))
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

// mysqlHello is what the probe uses of a server greeting.
type mysqlHello struct {
	version  []byte
	caps     uint32
	scramble []byte // the auth plugin data: 20 bytes from 4.1 on
}

// mysqlGreeting decodes a Protocol::HandshakeV10 (or the ERR packet a
// server sends instead, "Too many connections", "Host is blocked"). After
// the version come a connection id (4 bytes), the first 8 bytes of the
// scramble, a filler and the low 16 capability bits; the high 16 follow a
// character set and the status flags, then the scramble's length and 10
// reserved bytes, and the rest of the scramble, NUL-terminated. Only
// servers from 4.1 on send what follows the low capability bits.
func mysqlGreeting(payload []byte) (mysqlHello, error) {
	switch payload[0] {
	case mysqlProtocol10:
	case mysqlErrPacket:
		code, msg, err := mysqlParseError(payload)
		if err != nil {
			return mysqlHello{}, err
		}
		return mysqlHello{}, fmt.Errorf("server error %d: %s", code, msg)
	default:
		return mysqlHello{}, fmt.Errorf("greeting protocol version %d, want %d", payload[0], mysqlProtocol10)
	}
	version, rest, ok := bytes.Cut(payload[1:], []byte{0})
	if !ok {
		return mysqlHello{}, errors.New("malformed greeting: unterminated server version")
	}
	const scramble1, lowCaps, highCaps, scramble2 = 4, 13, 18, 31 // offsets in rest
	if len(rest) < lowCaps+2 {
		return mysqlHello{}, fmt.Errorf("malformed greeting: %d bytes after the server version, want at least %d", len(rest), lowCaps+2)
	}
	h := mysqlHello{version: version, scramble: bytes.Clone(rest[scramble1 : scramble1+8])}
	h.caps = uint32(binary.LittleEndian.Uint16(rest[lowCaps:]))
	if len(rest) >= highCaps+2 {
		h.caps |= uint32(binary.LittleEndian.Uint16(rest[highCaps:])) << 16
	}
	if h.caps&mysqlProtocol41 == 0 {
		return mysqlHello{}, fmt.Errorf("server %s lacks CLIENT_PROTOCOL_41 (MySQL 4.1 or later needed)", resp.Quote(version))
	}
	if len(rest) >= scramble2+12 {
		h.scramble = append(h.scramble, rest[scramble2:scramble2+12]...)
	}
	return h, nil
}

// mysqlLogin builds the HandshakeResponse41 packet (sequence 1) for user
// with the auth response auth, naming mysql_native_password as its plugin
// when the server offers CLIENT_PLUGIN_AUTH.
func mysqlLogin(user string, auth []byte, pluginAuth bool) []byte {
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
	p = append(p, 0, byte(len(auth))) // user terminator, auth response length
	p = append(p, auth...)
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
