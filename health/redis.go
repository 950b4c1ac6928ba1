package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
)

// redisCauses explains the error replies an operator meets most; any other
// error reply is reported as it is.
var redisCauses = map[string]string{
	"LOADING":    "server loading",
	"MASTERDOWN": "replica lost its master",
	"BUSY":       "server busy running a script",
	"NOAUTH":     "server needs a password (set health.password)",
	"WRONGPASS":  "password rejected",
	"NOPERM":     "the probe user lacks a permission",
}

// redis sends PING, or with a role to check ROLE, after AUTH when a
// password is set: AUTH user password for a Redis 6 ACL user named in
// health.user, AUTH password (the default user, or requirepass) without.
//
// ROLE says "master", or "slave" with the master's address, the link state
// and the replica's replication offset. A server that refuses ROLE (an ACL
// without it, a proxy) is asked INFO replication instead, which says the
// same in text. A replica held to max_lag_bytes is measured against its
// master: the probe asks the master it names for its offset (with the same
// password) and takes the difference. Its own offset is read first, so
// the lag is never under-estimated.
type redis struct {
	auth []byte // the AUTH command; nil without a password
	rule roleRule
}

func newRedis(user, password string, rule roleRule) *redis {
	p := &redis{rule: rule}
	switch {
	case password != "" && user != "":
		p.auth = resp.Command("AUTH", user, password)
	case password != "":
		p.auth = resp.Command("AUTH", password)
	}
	return p
}

var (
	redisPing = resp.Command("PING")
	redisRole = resp.Command("ROLE")
	redisInfo = resp.Command("INFO", "replication")
)

func (p *redis) converse(ctx context.Context, conn net.Conn) (seen, error) {
	c := &redisConn{ctx: ctx, conn: conn, r: resp.NewReader(conn)}
	if !p.rule.reads() {
		v, err := c.do(p.auth, redisPing)
		if err != nil {
			return seen{}, err
		}
		if v.Kind != resp.SimpleString || v.Str != "PONG" {
			return seen{}, redisReplyError(v)
		}
		return saw("PONG"), nil
	}
	role, err := c.role(p.auth)
	if err != nil {
		return seen{}, err
	}
	if role.master {
		if err := p.rule.accepts(config.RolePrimary, "master"); err != nil {
			return seen{}, err
		}
		return seen{detail: "master", role: config.RolePrimary}, nil
	}
	what := fmt.Sprintf("replica of %s (%s)", role.masterAddr(), role.state)
	if err := p.rule.accepts(config.RoleReplica, what); err != nil {
		return seen{}, err
	}
	if p.rule.maxLagBytes > 0 {
		lag, err := p.lag(ctx, role)
		if err != nil {
			return seen{}, fmt.Errorf("%s: %w", what, err)
		}
		if lag > p.rule.maxLagBytes {
			return seen{}, fmt.Errorf("%s, %d bytes behind, above max_lag_bytes %d", what, lag, p.rule.maxLagBytes)
		}
		what += fmt.Sprintf(", %d bytes behind", lag)
	}
	return seen{detail: what, role: config.RoleReplica}, nil
}

// lag asks a replica's master for its replication offset and returns how
// far the replica's offset trails it.
func (p *redis) lag(ctx context.Context, replica redisRoleInfo) (int64, error) {
	if replica.state != "connected" {
		return 0, errors.New("lag unknown while the link to the master is not connected")
	}
	conn, release, err := dialAddress(ctx, "tcp", replica.masterAddr())
	if err != nil {
		return 0, fmt.Errorf("lag unknown: master %w", err)
	}
	defer release()
	c := &redisConn{ctx: ctx, conn: conn, r: resp.NewReader(conn)}
	master, err := c.role(p.auth)
	switch {
	case err != nil:
		return 0, fmt.Errorf("lag unknown: master %s: %w", replica.masterAddr(), err)
	case !master.master:
		return 0, fmt.Errorf("lag unknown: its master %s is itself a replica", replica.masterAddr())
	}
	return max(0, master.offset-replica.offset), nil
}

// redisConn is one probe connection.
type redisConn struct {
	ctx  context.Context
	conn net.Conn
	r    *resp.Reader
}

// do sends auth (when not nil) and cmd in one write, one round trip, and
// returns cmd's reply; a rejected AUTH is reported from its own reply.
func (c *redisConn) do(auth, cmd []byte) (resp.Value, error) {
	if _, err := c.conn.Write(append(append([]byte(nil), auth...), cmd...)); err != nil {
		return resp.Value{}, failed(c.ctx, "write", err)
	}
	if auth != nil {
		v, err := c.read()
		if err != nil {
			return resp.Value{}, err
		}
		if v.Kind != resp.SimpleString || v.Str != "OK" {
			return resp.Value{}, fmt.Errorf("AUTH %w", redisReplyError(v))
		}
	}
	return c.read()
}

// read reads one reply, putting a connection failure in the probe's words.
func (c *redisConn) read() (resp.Value, error) {
	v, err := c.r.Read()
	var re *resp.ReadError
	if errors.As(err, &re) {
		if len(re.Partial) > 0 {
			return v, fmt.Errorf("%w after partial reply %s", failed(c.ctx, "read", re.Err), resp.Quote(re.Partial))
		}
		return v, failed(c.ctx, "read", re.Err)
	}
	return v, err
}

// redisRoleInfo is a server's replication role.
type redisRoleInfo struct {
	master bool
	offset int64 // the master's offset, or the replica's processed one
	// A replica's master and link state ("connected", "connect",
	// "connecting", "sync", "handshake").
	host  string
	port  int
	state string
}

func (r redisRoleInfo) masterAddr() string {
	return net.JoinHostPort(r.host, strconv.Itoa(r.port))
}

// role asks ROLE, or INFO replication when ROLE is refused.
func (c *redisConn) role(auth []byte) (redisRoleInfo, error) {
	v, err := c.do(auth, redisRole)
	if err != nil {
		return redisRoleInfo{}, err
	}
	if v.Kind == resp.Error && (strings.HasPrefix(v.Str, "ERR unknown command") || strings.HasPrefix(v.Str, "NOPERM")) {
		if v, err = c.do(nil, redisInfo); err != nil {
			return redisRoleInfo{}, err
		}
		if v.Kind != resp.BulkString {
			return redisRoleInfo{}, fmt.Errorf("INFO replication %w", redisReplyError(v))
		}
		return parseRedisInfo(v.Str)
	}
	return parseRedisRole(v)
}

// parseRedisRole decodes a ROLE reply: ["master", offset, replicas], or
// ["slave", host, port, state, offset]; a Sentinel answers ["sentinel",
// masters].
func parseRedisRole(v resp.Value) (redisRoleInfo, error) {
	if v.Kind != resp.Array || len(v.Array) == 0 || v.Array[0].Kind != resp.BulkString {
		return redisRoleInfo{}, fmt.Errorf("ROLE %w", redisReplyError(v))
	}
	a := v.Array
	switch a[0].Str {
	case "master":
		if len(a) != 3 || a[1].Kind != resp.Integer {
			return redisRoleInfo{}, fmt.Errorf("malformed reply: ROLE %s", resp.Quote([]byte(v.String())))
		}
		return redisRoleInfo{master: true, offset: a[1].Int}, nil
	case "slave", "replica":
		if len(a) != 5 || a[1].Kind != resp.BulkString || a[2].Kind != resp.Integer ||
			a[3].Kind != resp.BulkString || a[4].Kind != resp.Integer || a[2].Int < 0 || a[2].Int > 65535 {
			return redisRoleInfo{}, fmt.Errorf("malformed reply: ROLE %s", resp.Quote([]byte(v.String())))
		}
		return redisRoleInfo{host: a[1].Str, port: int(a[2].Int), state: a[3].Str, offset: a[4].Int}, nil
	case "sentinel":
		return redisRoleInfo{}, errors.New("a Sentinel, not a data server")
	}
	return redisRoleInfo{}, fmt.Errorf("ROLE answers %s", resp.Quote([]byte(a[0].Str)))
}

// parseRedisInfo decodes the fields of INFO replication that ROLE gives.
func parseRedisInfo(text string) (redisRoleInfo, error) {
	fields := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			fields[k] = v
		}
	}
	num := func(k string) (int64, error) {
		n, err := strconv.ParseInt(fields[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed reply: INFO replication %s %q", k, fields[k])
		}
		return n, nil
	}
	switch fields["role"] {
	case "master":
		off, err := num("master_repl_offset")
		return redisRoleInfo{master: true, offset: off}, err
	case "slave":
		off, err := num("slave_repl_offset")
		if err != nil {
			return redisRoleInfo{}, err
		}
		port, err := num("master_port")
		if err != nil || port < 0 || port > 65535 {
			return redisRoleInfo{}, fmt.Errorf("malformed reply: INFO replication master_port %q", fields["master_port"])
		}
		state := "connected"
		if fields["master_link_status"] != "up" {
			state = "link " + fields["master_link_status"]
		}
		return redisRoleInfo{host: fields["master_host"], port: int(port), state: state, offset: off}, nil
	}
	return redisRoleInfo{}, fmt.Errorf("malformed reply: INFO replication role %q", fields["role"])
}

// redisReplyError describes a reply other than the one wanted.
func redisReplyError(v resp.Value) error {
	switch v.Kind {
	case resp.SimpleString:
		return fmt.Errorf("reply %s: unexpected reply", resp.Quote([]byte("+"+v.Str)))
	case resp.Error:
	default:
		return fmt.Errorf("reply %s: unexpected reply", resp.Quote([]byte(v.String())))
	}
	line := "-" + v.Str
	prefix, _, _ := strings.Cut(v.Str, " ")
	cause, ok := redisCauses[prefix]
	if !ok {
		cause = "error reply"
	}
	return fmt.Errorf("reply %q: %s", line, cause)
}
