package health

import (
	"context"
	"net"
	"net/netip"

	"github.com/splicerlb/splicer/pkg/proxyproto"
)

// ProxyHeaders names the targets that read a PROXY protocol header before
// anything else (the backends splicer sends one to), with the version each
// expects: 1 or 2. A probe at such a target's service port opens with the
// header a check sends, which says "no client: use the connection's own
// addresses": v2 LOCAL, or v1 "PROXY UNKNOWN". Without it the target
// would wait for a header, or take the probe's first bytes for one, and
// fail a healthy server. A probe at a side port (health.port) sends none.
type ProxyHeaders map[netip.AddrPort]int

// Option adjusts a Checker that NewChecker builds.
type Option func(*checker)

// WithProxyHeaders makes the checker's probes open with a PROXY header to
// the targets in p.
func WithProxyHeaders(p ProxyHeaders) Option {
	return func(c *checker) {
		if len(p) > 0 {
			c.proxy = p
		}
	}
}

// The headers a probe sends: the connection is a check, not a client's.
var (
	localV1 = []byte("PROXY UNKNOWN\r\n")
	localV2 = proxyproto.AppendV2(nil, &proxyproto.Header{Command: proxyproto.Local}, false)
)

// preambleKey is the context key under which a probe carries its
// ProxyHeaders down to the dial, whichever probe dials.
type preambleKey struct{}

// withProxyHeaders returns ctx carrying p for the dials of one probe.
func withProxyHeaders(ctx context.Context, p ProxyHeaders) context.Context {
	if len(p) == 0 {
		return ctx
	}
	return context.WithValue(ctx, preambleKey{}, p)
}

// preamble is what a probe must send first on conn: the check header its
// remote address expects, or nil.
func preamble(ctx context.Context, conn net.Conn) []byte {
	addr, ok := conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return nil
	}
	return preambleFor(ctx, addr.AddrPort())
}

// preambleFor is what a probe must send first on a connection to ap: the
// check header ap expects, or nil.
func preambleFor(ctx context.Context, ap netip.AddrPort) []byte {
	p, _ := ctx.Value(preambleKey{}).(ProxyHeaders)
	if p == nil {
		return nil
	}
	v, ok := p[ap]
	if !ok {
		v = p[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]
	}
	switch v {
	case 1:
		return localV1
	case 2:
		return localV2
	}
	return nil
}

// sendPreamble writes the check header conn's target expects, if any.
func sendPreamble(ctx context.Context, conn net.Conn) error {
	if p := preamble(ctx, conn); p != nil {
		if _, err := conn.Write(p); err != nil {
			return err
		}
	}
	return nil
}
