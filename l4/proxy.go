package l4

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/proxyproto"
)

// The PROXY protocol, both ways (HAProxy's doc/proxy-protocol.txt).
//
// Accept: a frontend with accept_proxy reads a header from every client
// whose address is in accept_proxy_from before anything else. The
// connection starts in stateHeader: the loop peeks at the socket, parses
// what is there (proxyproto.Parse), and waits for more without taking a
// byte until the header is whole; then it reads exactly the header's
// bytes, so the stream's own bytes stay in the socket for the relay. The
// connection holds no buffer meanwhile: the loop has one scratch buffer
// for every peek. A header longer than V1MaxLen (v2 with TLVs) is peeked
// only once SIOCINQ shows all of it queued, so a sender dribbling bytes
// costs one ioctl per segment, not a copy of the whole header each time.
// The carried client address then replaces the sender's wherever the
// client address counts: the access list, the per-client limits, the
// balancing key, the connection list, and a header sent on. Clients
// outside accept_proxy_from are refused at accept (proxy_untrusted), or
// with accept_proxy_optional served as they are, their bytes untouched.
//
// Send: a backend with send_proxy gets the header before any client byte.
// When the connect completes, the header is loaded into the up
// direction's buffer; the relay drains a carrier before it reads the
// client again, so no client byte can overtake it, a partial write keeps
// the rest of the header for EPOLLOUT, and when the client's first bytes
// are already waiting they are read in behind the header, so one write
// carries both (see half.join).
//
// UDP: every datagram from a trusted sender starts with a v2 header,
// which is stripped; see udpListener.stripHeader.

// proxySend is a frontend generation's sending side: the version each
// backend gets and the TLVs of a v2 header.
type proxySend struct {
	version uint8                      // the frontend's send_proxy: 0 none, 1, 2
	per     map[*backend.Backend]uint8 // backends whose own send_proxy differs; nil when none does
	// The optional TLVs of a v2 header; authority is the frontend's name,
	// nil when not sent.
	uniqueID, crc bool
	authority     []byte
}

// proxyVersions maps send_proxy values to header versions.
var proxyVersions = map[string]uint8{"": 0, config.ProxyNone: 0, config.ProxyV1: 1, config.ProxyV2: 2}

// newProxySend builds the sending side of fc, whose backends are bs
// (bs[i] configured as fc.Backends[i]).
func newProxySend(fc *config.Frontend, bs []*backend.Backend) proxySend {
	ps := proxySend{version: proxyVersions[fc.SendProxy]}
	for i, b := range bs {
		if i >= len(fc.Backends) {
			break
		}
		v, ok := proxyVersions[fc.Backends[i].SendProxy]
		if ok && fc.Backends[i].SendProxy != "" && v != ps.version {
			if ps.per == nil {
				ps.per = make(map[*backend.Backend]uint8)
			}
			ps.per[b] = v
		}
	}
	for _, t := range fc.SendProxyTLVs {
		switch t {
		case config.ProxyTLVUniqueID:
			ps.uniqueID = true
		case config.ProxyTLVAuthority:
			ps.authority = []byte(fc.Name)
		case config.ProxyTLVCRC32C:
			ps.crc = true
		}
	}
	return ps
}

// versionFor is the header version b gets: 0 for none.
func (ps *proxySend) versionFor(b *backend.Backend) uint8 {
	if ps.per != nil {
		if v, ok := ps.per[b]; ok {
			return v
		}
	}
	return ps.version
}

// trustedSender reports whether a client at ip may (and so must) send a
// PROXY header to fe.
func (fe *frontend) trustedSender(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range fe.cfg.AcceptProxyFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// headerLog rate-limits the log lines about refused PROXY headers and
// senders: one line per acceptLogEvery at most, with the count since the
// last one and the latest case.
type headerLog struct {
	last time.Time
	n    int
}

// Reasons for refusals that are not the parser's.
var (
	errUntrusted      = errors.New("sender not in accept_proxy_from")
	errHeaderCut      = errors.New("connection closed inside the header")
	errDatagramShort  = errors.New("datagram ends inside its PROXY header")
	errDatagramV1     = errors.New("a v1 header in a datagram: only v2 is defined for UDP")
	errHeaderTimedOut = errors.New("no complete header within proxy_header_timeout")
)

// note counts a refusal of sender for why, and logs it when the last line
// is old enough.
func (hl *headerLog) note(l *loop, fe *frontend, sender netip.AddrPort, why error) {
	hl.n++
	if l.now.Sub(hl.last) < acceptLogEvery {
		return
	}
	l.srv.log.Warn().Str("frontend", fe.cfg.Name).Stringer("sender", sender).Err(why).
		Int("refused", hl.n).Msg("PROXY protocol: refused")
	hl.last = l.now
	hl.n = 0
}

// untrusted closes a client outside accept_proxy_from, with a reset.
func (ln *listener) untrusted(fd int, peer netip.AddrPort) {
	refuse(fd)
	ln.fe.closed[CauseProxyUntrusted].Add(1)
	ln.logRefused(peer, CauseProxyUntrusted)
	ln.headerLog.note(ln.loop, ln.fe, peer, errUntrusted)
}

// headerBuffer is the loop's scratch buffer for peeking at PROXY headers,
// made on first use: one for every connection of the loop, since a header
// is parsed in one go once it is all there.
func (l *loop) headerBuffer() []byte {
	if l.hdrBuf == nil {
		l.hdrBuf = make([]byte, proxyproto.MaxLen)
	}
	return l.hdrBuf
}

// startHeader starts a connection from a trusted sender in stateHeader.
func (c *conn) startHeader() {
	c.state = stateHeader
	c.hdrNeed = 1
	c.loop.wheel.Schedule(&c.timer, c.fe.cfg.ProxyHeaderTimeout)
	// The header usually came with the handshake's last segment, before
	// the accept: look now rather than wait for the registration's edge.
	c.readHeader()
}

// onHeaderEvent handles an event of the client socket while its header is
// read. The edges are recorded for the relay that follows.
func (c *conn) onHeaderEvent(ev uint32) {
	if ev&unix.EPOLLERR != 0 {
		c.end(CauseClientReset)
		return
	}
	markReady(ev, &c.up, &c.down)
	c.readHeader()
}

// readHeader looks for a whole PROXY header in the client socket and, once
// there is one, takes exactly its bytes and moves on. It never blocks and
// never takes a byte past the header.
func (c *conn) readHeader() {
	buf := c.loop.headerBuffer()
	for {
		need := int(c.hdrNeed)
		if need > proxyproto.V1MaxLen && sock.Unread(c.cfd) < need {
			c.headerWait()
			return
		}
		want := min(max(need, proxyproto.V1MaxLen), len(buf))
		n, err := sock.Recv(c.cfd, buf[:want], unix.MSG_PEEK)
		switch {
		case errors.Is(err, unix.EAGAIN):
			c.up.srcReady = false
			c.headerWait()
			return
		case err != nil && isLocalError(err):
			c.end(CauseLocalError)
			return
		case err != nil:
			c.end(CauseClientReset)
			return
		case n == 0:
			// A FIN before any byte: the sender opened and closed, as a
			// TCP health check does; it cut no header.
			c.end(CauseClientFIN)
			return
		}
		h, size, err := proxyproto.Parse(buf[:n])
		if err == proxyproto.ErrShort {
			c.hdrNeed = uint32(size)
			if n < want || size <= proxyproto.V1MaxLen {
				// Everything queued is seen: wait for more.
				c.headerWait()
				return
			}
			continue // a v2 header longer than the first look
		}
		if err != nil {
			c.headerRefused(CauseProxyInvalid, err)
			return
		}
		// The bytes are queued (just peeked): this read takes them all.
		if got, err := sock.Recv(c.cfd, buf[:size], 0); err != nil || got != size {
			c.end(CauseLocalError)
			return
		}
		c.headerRead(&h)
		return
	}
}

// headerWait returns to the loop until more of the header comes; a sender
// that closed its side has sent all it will, and cut the header short.
func (c *conn) headerWait() {
	if c.up.srcHup {
		c.headerRefused(CauseProxyInvalid, errHeaderCut)
	}
}

// headerRefused ends a connection whose header failed, and logs it.
func (c *conn) headerRefused(cause Cause, why error) {
	if c.ln != nil {
		c.ln.headerLog.note(c.loop, c.fe, c.client, why)
	}
	c.end(cause)
}

// headerRead applies a parsed header: the client it names stands for the
// client from now on (a LOCAL or UNKNOWN header keeps the connection's own
// addresses), then the checks deferred from accept run on it, and the
// connection goes on to its backend.
func (c *conn) headerRead(h *proxyproto.Header) {
	c.loop.wheel.Stop(&c.timer)
	if h.Addressed() {
		c.proxied = &proxied{via: c.client, dst: netip.AddrPortFrom(h.Destination.Addr().Unmap(), h.Destination.Port())}
		c.client = netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port())
	}
	ip := c.client.Addr()
	if !c.fe.acl.admits(ip) {
		if c.ln != nil {
			c.ln.noteDenied()
		}
		c.end(CauseDenied)
		return
	}
	if t := c.fe.clients; t != nil {
		switch t.admit(ip, c.loop.now) {
		case refusedNone:
			c.admitted = true
		case refusedRate:
			c.end(CauseRateLimit)
			return
		default:
			c.end(CauseClientLimit)
			return
		}
	}
	c.key = keyFor(ip)
	c.lastActive = c.stampNow()
	c.state = stateConnecting
	c.connectNext()
}

// loadHeader puts the PROXY header of version v for this connection into
// the up direction's carrier, which is empty: the relay writes it to the
// backend before any client byte.
func (c *conn) loadHeader(v uint8) {
	b := c.loop.pipes.GetBuffer()
	// Written in place: a Buffer holds 4KiB at least, and a header at
	// most MaxEncodedLen, so the append never moves to a new array.
	hdr := c.appendHeader(b.Space()[:0:proxyproto.MaxEncodedLen], v)
	if err := b.Load(hdr); err != nil {
		// Cannot happen: the buffer is empty and the header fits.
		c.loop.pipes.PutBuffer(b)
		c.loop.srv.log.Error().Err(err).Msg("loading a PROXY header")
		return
	}
	c.up.buf, c.up.carrier = b, b
	c.up.ours = len(hdr)
	c.up.join = true
}

// appendHeader appends the header of version v: the client (carried, if a
// header brought it) and the address it connected to.
func (c *conn) appendHeader(b []byte, v uint8) []byte {
	var dst netip.AddrPort
	if c.proxied != nil {
		dst = c.proxied.dst
	} else {
		dst = c.localAddr()
	}
	if v == 1 {
		return proxyproto.AppendV1(b, c.client, dst)
	}
	h := proxyproto.Header{Command: proxyproto.Proxy, Transport: proxyproto.TransportStream, Source: c.client, Destination: dst}
	ps := &c.fe.send
	var id [20]byte
	if ps.uniqueID {
		h.UniqueID = strconv.AppendUint(id[:0], c.id, 10)
	}
	h.Authority = ps.authority
	return proxyproto.AppendV2(b, &h, ps.crc)
}

// via is the peer that sent the connection's PROXY header, if one carried
// addresses.
func (c *conn) via() netip.AddrPort {
	if c.proxied == nil {
		return netip.AddrPort{}
	}
	return c.proxied.via
}

// localAddr is the address the client connected to: its listener's, or,
// on a wildcard listener, the socket's own (one getsockname).
func (c *conn) localAddr() netip.AddrPort {
	if c.ln != nil && !c.ln.addr.Addr().IsUnspecified() {
		return c.ln.addr
	}
	a, err := sock.BoundAddr(c.cfd)
	if err != nil {
		return netip.AddrPort{} // the header then says "unknown"
	}
	return a
}

// stripHeader checks a datagram from sender on an accept_proxy frontend:
// from a trusted sender it must start with a v2 header, which is cut off,
// and origin is the client the header names (invalid for a LOCAL header,
// or one without addresses: the sender is then the client); from another
// sender it is refused, or passed as it is with accept_proxy_optional. ok
// is false for a datagram dropped, and counted.
func (ln *udpListener) stripHeader(sender netip.AddrPort, data []byte) (payload []byte, origin netip.AddrPort, ok bool) {
	fe := ln.fe
	if !fe.trustedSender(sender.Addr()) {
		if fe.cfg.AcceptProxyOptional {
			return data, netip.AddrPort{}, true
		}
		fe.udp.drop(DropProxyUntrusted)
		ln.headerLog.note(ln.loop, fe, sender, errUntrusted)
		return nil, netip.AddrPort{}, false
	}
	h, n, err := proxyproto.Parse(data)
	switch {
	case err == proxyproto.ErrShort:
		err = errDatagramShort
	case err == nil && h.Version != 2:
		err = errDatagramV1
	}
	if err != nil {
		fe.udp.drop(DropProxyHeader)
		ln.headerLog.note(ln.loop, fe, sender, err)
		return nil, netip.AddrPort{}, false
	}
	if h.Addressed() {
		origin = netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port())
	}
	return data[n:], origin, true
}
