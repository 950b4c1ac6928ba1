package health

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// maxReply bounds what any probe reads from a target (a reply, a message, a
// greeting), so a misbehaving server cannot make a probe buffer without end.
const maxReply = 64 << 10

// dial connects to addr over network ("tcp" or "udp") and ties the conn to
// ctx: the conn's deadline is ctx's, and the conn is closed as soon as ctx is
// done, so no read or write outlives the probe. The caller must call release
// exactly once; it closes the conn and cancels the close-on-done hook.
func dial(ctx context.Context, network string, addr netip.AddrPort) (conn net.Conn, release func(), err error) {
	return dialAddress(ctx, network, addr.String())
}

// dialAddress is dial to a "host:port" address, which a server may name
// (a replica names its master so).
func dialAddress(ctx context.Context, network, address string) (conn net.Conn, release func(), err error) {
	conn, untie, err := open(ctx, network, address)
	if err != nil {
		return nil, nil, err
	}
	return conn, closer(conn, untie), nil
}

// tie binds conn to ctx (see bind) for the length of a probe: release
// closes conn and cancels the hook. On error conn is closed already.
func tie(ctx context.Context, conn net.Conn) (release func(), err error) {
	untie, err := bind(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return closer(conn, untie), nil
}

// closer returns the release of a conn bound by bind.
func closer(conn net.Conn, untie func() bool) func() {
	return func() {
		untie()
		conn.Close()
	}
}

// dialConn connects a probe's conn. A variable only so that tests can
// wrap the conn in one whose writes fail (a peer that resets mid-login),
// which a real socket cannot be made to do on cue.
var dialConn = func(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// open connects to address for a probe: it counts the connection in the
// probe's session, binds the conn to ctx (see bind) and sends the PROXY
// header the target expects. The caller owns conn and must call untie
// before it keeps or closes it; on error nothing is left open.
func open(ctx context.Context, network, address string) (conn net.Conn, untie func() bool, err error) {
	conn, err = dialConn(ctx, network, address)
	if err != nil {
		return nil, nil, failed(ctx, "connect", err)
	}
	countOpen(ctx)
	if untie, err = bind(ctx, conn); err != nil {
		conn.Close()
		return nil, nil, failed(ctx, "connect", err)
	}
	if err := sendPreamble(ctx, conn); err != nil {
		untie()
		conn.Close()
		return nil, nil, failed(ctx, "PROXY header", err)
	}
	return conn, untie, nil
}

// bind makes conn obey ctx: its deadline is ctx's, and it is closed as
// soon as ctx is done, so no read or write outlives the probe. untie
// cancels the hook and clears the deadline, for a connection kept after
// the probe, and reports whether conn is still open (false when ctx was
// done first and closed it). On error conn is left to the caller.
func bind(ctx context.Context, conn net.Conn) (untie func() bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return func() bool {
		return stop() && conn.SetDeadline(time.Time{}) == nil
	}, nil
}

// conversation is a database probe once connected: it talks to the server
// over conn, which is tied to ctx, and leaves closing it to its caller.
type conversation func(ctx context.Context, conn net.Conn) (seen, error)

// overTCP makes a conversation a probe: dial, converse, close.
func overTCP(converse conversation) probeFunc {
	return func(ctx context.Context, addr netip.AddrPort) (seen, error) {
		conn, release, err := dial(ctx, "tcp", addr)
		if err != nil {
			return seen{}, err
		}
		defer release()
		return converse(ctx, conn)
	}
}
