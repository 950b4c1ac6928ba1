package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
)

// httpProbe sends GET path to the target and wants one status code. It
// speaks HTTP/1.1 itself, so that it decides exactly when a connection is
// opened, kept and reused: with keepalive, and a session to keep it in
// (the Scheduler gives each target one), the connection of one check
// serves the next, and it sends no Connection header; without, it sends
// "Connection: close" and closes after the response. It ignores proxy
// settings from the environment and follows no redirect: a 301 is an
// answer to judge.
//
// A kept connection is reused only when its last response was read
// whole, said nothing of closing, and nothing followed it. When the
// server has closed it since (its idle timeout, a restart), the probe
// opens a new one at once and judges that one, so a server dropping idle
// connections never counts as a failure; a server that stops answering
// still times out on the kept connection, and a dead one refuses the new
// connection.
type httpProbe struct {
	shown     string // the path as configured, for messages
	target    string // request-target: path and query, escaped
	status    int
	keepalive bool
}

// maxInterim bounds the 1xx interim responses (103 Early Hints, ...) a
// probe skips before the final one.
const maxInterim = 4

// errStale is returned by exchange on a kept connection that the server
// had closed before it read the request.
var errStale = errors.New("kept connection closed by the server")

// errReplyLimit is what a probe's connection reads once the response
// passed maxReply bytes.
var errReplyLimit = errors.New("response over 64 KiB")

func newHTTPProbe(path string, status int, keepalive bool) (*httpProbe, error) {
	u, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("health.path %q: %w", path, err)
	}
	if u.Scheme != "" || u.Host != "" {
		return nil, fmt.Errorf("health.path %q: want a path, not a URL", path)
	}
	return &httpProbe{shown: u.String(), target: u.RequestURI(), status: status, keepalive: keepalive}, nil
}

// httpConn is a probe's HTTP connection with its reader, which a session
// keeps between checks.
type httpConn struct {
	conn net.Conn
	in   meter
	br   *bufio.Reader // reads in; empty between checks
}

func newHTTPConn(conn net.Conn) *httpConn {
	hc := &httpConn{conn: conn, in: meter{r: conn}}
	hc.br = bufio.NewReader(&hc.in)
	return hc
}

// meter counts what a connection delivers and stops it at a limit.
type meter struct {
	r        io.Reader
	n, limit int64
}

func (m *meter) Read(p []byte) (int, error) {
	if m.n >= m.limit {
		return 0, errReplyLimit
	}
	if rest := m.limit - m.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	return n, err
}

func (p *httpProbe) probe(ctx context.Context, addr netip.AddrPort) (seen, error) {
	sess := sessionOf(ctx)
	keep := p.keepalive && sess != nil
	if keep {
		if hc := sess.take(); hc != nil {
			s, err := p.reuse(ctx, sess, hc, addr)
			if !errors.Is(err, errStale) {
				return s, err
			}
			// The server closed it while idle, which says nothing of
			// its health: a new connection decides.
		}
	}
	conn, untie, err := open(ctx, "tcp", addr.String())
	if err != nil {
		return seen{}, failed(ctx, p.step(), err)
	}
	return p.exchange(ctx, sess, newHTTPConn(conn), untie, addr, keep, false)
}

// reuse runs the check over a kept connection, or returns errStale
// (having closed it) when the server has closed it or sent something
// unasked since the last response (a 408 at its idle timeout).
func (p *httpProbe) reuse(ctx context.Context, sess *session, hc *httpConn, addr netip.AddrPort) (seen, error) {
	if !quiet(hc.conn) {
		hc.conn.Close()
		return seen{}, errStale
	}
	untie, err := bind(ctx, hc.conn)
	if err != nil {
		hc.conn.Close()
		return seen{}, errStale
	}
	return p.exchange(ctx, sess, hc, untie, addr, true, true)
}

// quiet reports whether conn is open with nothing to read: a peek that
// cannot wait tells a live idle connection (EAGAIN) from one the server
// closed (end of stream, a reset) or wrote to. (A read deadline in the
// past cannot tell: Go reports the timeout without reading.)
func quiet(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	alive := false
	err = rc.Read(func(fd uintptr) bool {
		_, _, perr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(perr, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return err == nil && alive
}

// exchange sends the request over hc, bound to ctx by bind (untie), and
// judges the response; with keep it leaves hc in sess when it may serve
// the next check, else it closes it. On a kept connection (reused) a
// failure before the first response byte that says the server closed the
// connection is errStale.
func (p *httpProbe) exchange(ctx context.Context, sess *session, hc *httpConn, untie func() bool,
	addr netip.AddrPort, keep, reused bool) (s seen, err error) {
	reusable := false
	defer func() {
		if untie() && reusable {
			sess.keep(hc)
			return
		}
		hc.conn.Close()
	}()
	if _, err := io.WriteString(hc.conn, p.request(addr, keep)); err != nil {
		if reused && ctx.Err() == nil {
			return seen{}, errStale
		}
		return seen{}, failed(ctx, p.step(), err)
	}
	hc.in.n, hc.in.limit = 0, maxReply
	resp, err := http.ReadResponse(hc.br, nil)
	for i := 0; err == nil && resp.StatusCode/100 == 1 && resp.StatusCode != http.StatusSwitchingProtocols; i++ {
		if i == maxInterim {
			return seen{}, fmt.Errorf("%s: more than %d interim responses", p.step(), maxInterim)
		}
		resp, err = http.ReadResponse(hc.br, nil)
	}
	switch {
	case err == nil:
	case reused && hc.in.n == 0 && ctx.Err() == nil && closedByPeer(err):
		return seen{}, errStale
	case hc.in.n == 0 && errors.Is(err, io.ErrUnexpectedEOF):
		return seen{}, fmt.Errorf("%s: connection closed before a response", p.step())
	default:
		return seen{}, failed(ctx, p.step(), err)
	}
	if keep && !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols {
		// Read the body to the end, or give the connection up: the next
		// response must not start in the middle of this one.
		hc.in.limit = hc.in.n + maxReply
		_, derr := io.Copy(io.Discard, resp.Body)
		reusable = derr == nil && hc.br.Buffered() == 0
	}
	if resp.StatusCode != p.status {
		return seen{}, fmt.Errorf("%s: status %d, want %d", p.step(), resp.StatusCode, p.status)
	}
	return saw(fmt.Sprintf("%s: status %d", p.step(), resp.StatusCode)), nil
}

// step names the probe's request in its messages: "GET /health".
func (p *httpProbe) step() string { return "GET " + p.shown }

// request is the probe's request to addr; keep leaves the connection open
// (HTTP/1.1's default), else the request asks the server to close it.
func (p *httpProbe) request(addr netip.AddrPort, keep bool) string {
	conn := ""
	if !keep {
		conn = "Connection: close\r\n"
	}
	return "GET " + p.target + " HTTP/1.1\r\nHost: " + addr.String() + "\r\nUser-Agent: splicer-health\r\n" + conn + "\r\n"
}

// closedByPeer reports whether err says the other end closed the
// connection: end of stream or a reset.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
