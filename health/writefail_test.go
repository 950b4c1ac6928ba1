package health

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
)

// resetConn is a probe conn whose n-th write fails as a write to a peer
// that reset the connection does; the writes before it go through.
type resetConn struct {
	net.Conn
	n, writes int
}

func (c *resetConn) Write(p []byte) (int, error) {
	if c.writes++; c.writes == c.n {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
			Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	}
	return c.Conn.Write(p)
}

// failWrite makes the n-th write of every probe conn dialled during the
// test fail.
func failWrite(t *testing.T, n int) {
	saved := dialConn
	t.Cleanup(func() { dialConn = saved })
	dialConn = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := saved(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &resetConn{Conn: c, n: n}, nil
	}
}

// TestProbeWriteFailures: a server that resets the connection while the
// probe writes (its startup, a login answer, the role query, a PROXY
// header) is down, and the message names the step that failed.
func TestProbeWriteFailures(t *testing.T) {
	t.Setenv("SPLICER_TEST_PW", "s3cret")
	password := config.Secret{Env: "SPLICER_TEST_PW"}
	pg := func(role string, pw bool) config.Health {
		h := config.Health{Check: "postgres", User: "splicer", Database: "app", Role: role}
		if pw {
			h.Password = password
		}
		return h
	}
	mysqlRole := config.Health{Check: "mysql", User: "splicer", Role: config.RolePrimary}
	sendExpect := config.Health{Check: "send_expect", Send: "PING\r\n", Expect: "+PONG"}
	for _, tc := range []struct {
		name   string
		health config.Health
		write  int // the write that fails
		server func(net.Conn)
		proxy  bool
		msg    string
	}{
		{"postgres startup", pg("", false), 1, fakePgScript(t, []pgStep{pgRead(0, nil)}, nil), false,
			"postgres probe %s: write: connection reset by peer"},
		{"postgres password", pg(config.RolePrimary, true), 2, fakePgScript(t, []pgStep{pgRead(0, nil), pgSend(pgAuth(5, "salt"))}, nil), false,
			"postgres probe %s: write: connection reset by peer"},
		{"postgres role query", pg(config.RolePrimary, false), 2, fakePgScript(t, []pgStep{pgRead(0, nil), pgSend(pgLoggedIn(""))}, nil), false,
			"postgres probe %s: write: connection reset by peer"},
		{"mysql login", config.Health{Check: "mysql", User: "splicer"}, 1, fakeMySQL(mysqlGreetingPlugin, nil, nil), false,
			"mysql probe %s: write: connection reset by peer"},
		{"mysql auth switch", config.Health{Check: "mysql", User: "splicer"}, 2, fakeMySQL(mysqlGreetingPlugin, []string{mysqlSwitch}, nil), false,
			"mysql probe %s: write: connection reset by peer"},
		{"mysql role query", mysqlRole, 2, fakeMySQL(mysqlGreetingPlugin, []string{mysqlOKReply}, nil), false,
			"mysql probe %s: write: connection reset by peer"},
		{"redis", config.Health{Check: "redis"}, 1, fakeRedis(nil, "+PONG"), false,
			"redis probe %s: write: connection reset by peer"},
		{"send_expect", sendExpect, 1, hang, false,
			"send_expect probe %s: write: connection reset by peer"},
		{"PROXY header", sendExpect, 1, hang, true,
			"send_expect probe %s: PROXY header: connection reset by peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failWrite(t, tc.write)
			addr := serve(t, tc.server)
			var opts []Option
			if tc.proxy {
				opts = append(opts, WithProxyHeaders(ProxyHeaders{addr: 2}))
			}
			c, err := NewChecker(tc.health, opts...)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, c, addr, 0, false, fmt.Sprintf(tc.msg, addr))
		})
	}
}
