package l4

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/timer"
	"github.com/splicerlb/splicer/pkg/backend"
)

const (
	// udpBatch is the number of datagrams one recvmmsg or sendmmsg call
	// moves. 32 amortises the syscall over a full batch under load; see
	// docs/benchmarks.md for the measurement.
	udpBatch = 32
	// udpRecvRounds bounds the recvmmsg calls per wake-up of one frontend
	// socket, so a flood on one cannot starve the loop's other sockets.
	// The sockets are level-triggered: what is left is reported again.
	udpRecvRounds = 4
	// dropPollEvery is how often a frontend socket's kernel drop count is
	// read directly, so that drops on a socket gone quiet show within it.
	dropPollEvery = time.Second
)

// DropReason says why the data plane dropped a UDP datagram.
type DropReason uint8

// The drop reasons. Each datagram dropped is counted once, under the first
// reason that applies.
const (
	DropMaxFlows       DropReason = iota // new flow refused: max_flows reached
	DropNoBackend                        // new flow refused: no backend could take it
	DropAccessList                       // the client is refused by allow/deny
	DropPerClient                        // max_connections_per_client (flows per client IP)
	DropRateLimit                        // connection_rate_per_client (new flows per second)
	DropShutdown                         // new flow refused: the server is shutting down
	DropLocal                            // no socket for a new flow (out of fds or memory)
	DropSendError                        // the kernel refused to send it (buffer full)
	DropRefused                          // the backend answered with an ICMP error
	DropForeign                          // a reply from an address other than the flow's backend
	DropUnsolicited                      // a reply where none is expected (responses = 0)
	DropReceiveBuffer                    // dropped by the kernel: the frontend socket's receive buffer was full
	DropProxyHeader                      // accept_proxy: a trusted sender's datagram without a valid v2 PROXY header
	DropProxyUntrusted                   // accept_proxy: a datagram from a sender outside accept_proxy_from
	NumDropReasons     = int(DropProxyUntrusted) + 1
)

var dropNames = [NumDropReasons]string{
	DropMaxFlows:       "max_flows",
	DropNoBackend:      "no_backend",
	DropAccessList:     "access_list",
	DropPerClient:      "per_client",
	DropRateLimit:      "rate_limit",
	DropShutdown:       "shutdown",
	DropLocal:          "local_error",
	DropSendError:      "send_error",
	DropRefused:        "refused",
	DropForeign:        "foreign_source",
	DropUnsolicited:    "unsolicited",
	DropReceiveBuffer:  "receive_buffer",
	DropProxyHeader:    "proxy_header",
	DropProxyUntrusted: "proxy_untrusted",
}

// String is the reason's name in stats and metrics.
func (r DropReason) String() string {
	if int(r) < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// udpCounters are a UDP frontend's datagram counters; its flows are
// counted in frontend.active and frontend.total, its bytes in
// frontend.bytesIn and bytesOut. "In" is client to backend.
type udpCounters struct {
	dgramsIn  atomic.Uint64
	dgramsOut atomic.Uint64
	drops     [NumDropReasons]atomic.Uint64
}

func (c *udpCounters) drop(r DropReason) { c.drops[r].Add(1) }

// udpPeer is a backend's address in the two forms the UDP path needs,
// computed once per backend: the kernel form datagrams are sent to, and
// the canonical form (see sock.Canonical) replies' source addresses and
// ICMP errors' destinations are checked against.
type udpPeer struct {
	to   sock.RawAddr
	addr netip.AddrPort
}

// newUDPPeers computes the peers of a UDP frontend's backends.
func newUDPPeers(bs []*backend.Backend) map[*backend.Backend]*udpPeer {
	peers := make(map[*backend.Backend]*udpPeer, len(bs))
	for _, b := range bs {
		addr := sock.Canonical(b.Address())
		peers[b] = &udpPeer{to: sock.MakeRawAddr(addr), addr: addr}
	}
	return peers
}

// flowKey identifies a flow: the address datagrams come from (and replies
// go to), on a socket bound to a wildcard address the local address it
// wrote to (else invalid), and on an accept_proxy frontend the client the
// sender's PROXY headers name (else invalid: the sender is the client).
type flowKey struct {
	client netip.AddrPort
	local  netip.Addr
	origin netip.AddrPort
}

// clientAddr is the flow's client: the one its PROXY header names, or the
// sender.
func (k *flowKey) clientAddr() netip.AddrPort {
	if k.origin.IsValid() {
		return k.origin
	}
	return k.client
}

// udpListener is one loop's socket for one address of a UDP frontend and
// the flows of the clients whose datagrams the kernel steers to it.
// SO_REUSEPORT hashes a client's address to the same socket every time, so
// a flow lives on one loop without any locking.
type udpListener struct {
	loop     *loop
	fe       *frontend
	fd       int
	addr     netip.AddrPort
	idx      uint32
	wildcard bool // bound to 0.0.0.0 or ::: replies need pktinfo

	flows map[flowKey]*flow
	// kernelDrops is the socket's SO_RXQ_OVFL count as last seen: the
	// datagrams the kernel dropped before the loop could read them.
	kernelDrops uint32
	// dropPoll reads that count every dropPollEvery, for the drops that
	// no later datagram reports because the socket went quiet.
	dropPoll timer.Timer
	// draining is set by a graceful shutdown: no new flows. The socket
	// stays open until the loop stops: closing it would change which
	// socket of the SO_REUSEPORT group the kernel hashes each client to,
	// sending open flows' datagrams to loops that do not know them.
	draining bool

	errLog    time.Time // last "cannot open a backend socket" line
	errLogN   int       // such failures since
	headerLog headerLog // refused PROXY headers and senders
}

// openUDP binds a frontend socket for fe at addr with the options every
// one needs: pktinfo on a wildcard address, the kernel's drop count, the
// receive buffer asked for. warn logs a smaller buffer than asked.
func openUDP(fe *frontend, addr netip.AddrPort, warn func(want, got int)) (fd int, bound netip.AddrPort, err error) {
	fd, err = sock.ListenUDP(addr, true)
	if err != nil {
		return -1, addr, err
	}
	bound, err = sock.LocalAddr(fd)
	if err == nil {
		err = setupUDP(fd, fe, bound, warn)
	}
	if err != nil {
		unix.Close(fd)
		return -1, addr, err
	}
	return fd, bound, nil
}

// setupUDP sets the options of a frontend socket bound to bound; see openUDP.
func setupUDP(fd int, fe *frontend, bound netip.AddrPort, warn func(want, got int)) error {
	if bound.Addr().IsUnspecified() {
		if err := sock.EnablePktinfo(fd, bound); err != nil {
			return err
		}
	}
	if err := sock.EnableDropCount(fd); err != nil {
		return err
	}
	if want := fe.cfg.ReceiveBuffer; want > 0 {
		got, err := sock.SetReceiveBuffer(fd, want)
		if err != nil {
			return fmt.Errorf("receive_buffer: %w", err)
		}
		// The kernel keeps the size doubled in an int, so the largest
		// request comes back a byte short: only a real cut is reported.
		if got < want-want/64 && warn != nil {
			warn(want, got)
		}
	}
	return nil
}

// warnReceiveBuffer logs a receive buffer smaller than fe asked for.
func (s *Server) warnReceiveBuffer(fe *frontend) func(want, got int) {
	return func(want, got int) {
		s.log.Warn().Str("frontend", fe.cfg.Name).Int("receive_buffer", want).Int("granted", got).
			Msg("the kernel granted a smaller receive buffer: raise net.core.rmem_max, or run with CAP_NET_ADMIN")
	}
}

// newUDPListener makes a listener of fd, a frontend socket set up by
// openUDP, and registers it with l's poller; on error fd is closed.
func newUDPListener(l *loop, fe *frontend, fd int, bound netip.AddrPort) (*udpListener, error) {
	ln := &udpListener{
		loop: l, fe: fe, fd: fd, addr: bound,
		wildcard: bound.Addr().IsUnspecified(),
		flows:    make(map[flowKey]*flow),
	}
	var gen uint32
	ln.idx, gen = l.alloc(ln)
	// Level-triggered: a socket left with datagrams after its budget is
	// reported again by the next epoll_wait.
	if err := l.poll.Add(fd, unix.EPOLLIN, token(ln.idx, gen, 0)); err != nil {
		l.releaseSlot(ln.idx)
		unix.Close(fd)
		return nil, err
	}
	ln.dropPoll.Fire = ln.pollDrops
	l.wheel.Schedule(&ln.dropPoll, dropPollEvery)
	return ln, nil
}

// onEvent reads datagrams from clients and forwards each to its flow's
// backend, opening flows as needed.
func (ln *udpListener) onEvent(_ uint32, _ uint32) {
	b := ln.loop.recvBatch()
	for round := 0; round < udpRecvRounds && ln.fd >= 0; round++ {
		n, err := b.Recv(ln.fd)
		if err != nil {
			return // EAGAIN; any other error is the socket's, seen again next time
		}
		if n > 0 {
			ln.countKernelDrops(b, n-1)
		}
		for i := 0; i < n; i++ {
			key := flowKey{client: b.From(i)}
			if ln.wildcard {
				key.local = b.Dest(i)
			}
			data := b.Data(i)
			if ln.fe.cfg.AcceptProxy {
				var ok bool
				if data, key.origin, ok = ln.stripHeader(key.client, data); !ok {
					continue
				}
			}
			ln.forward(key, data)
		}
		if n < b.Slots() {
			return
		}
	}
}

// countKernelDrops adds the datagrams the kernel dropped on this socket
// since the last look, from the count received slot i carries: the count
// only grows, so the batch's last datagram has the latest.
func (ln *udpListener) countKernelDrops(b *sock.Batch, i int) {
	if count, ok := b.Dropped(i); ok {
		ln.addKernelDrops(count)
	}
}

// pollDrops reads the socket's drop count directly. A datagram carries the
// count as it was when the kernel queued it, so drops after the last one
// queued would otherwise wait for the socket's next datagram.
func (ln *udpListener) pollDrops() {
	if ln.fd < 0 {
		return
	}
	if count, err := sock.DropCount(ln.fd); err == nil {
		ln.addKernelDrops(count)
	}
	ln.loop.wheel.Schedule(&ln.dropPoll, dropPollEvery)
}

// addKernelDrops counts the growth of the kernel's drop count up to count.
// uint32 arithmetic is right across the counter's wrap. A count below the
// last seen adds nothing: a datagram read after a poll carries the older
// count of its enqueueing.
func (ln *udpListener) addKernelDrops(count uint32) {
	if d := count - ln.kernelDrops; int32(d) > 0 {
		ln.fe.udp.drops[DropReceiveBuffer].Add(uint64(d))
		ln.kernelDrops = count
	}
}

// forward sends one client datagram on to the client's backend.
func (ln *udpListener) forward(key flowKey, data []byte) {
	fe := ln.fe
	f := ln.flows[key]
	if f != nil && !serving(f.be) {
		// Its backend went down or into maint: the client moves to
		// another. (A drained backend keeps its flows until they idle,
		// as it keeps its connections.)
		f.close(CauseBackendDown)
		f = nil
	}
	if f == nil {
		if fe.cfg.Responses == 0 {
			ln.fireAndForget(key.clientAddr().Addr(), data)
			return
		}
		if f = ln.openFlow(key); f == nil {
			return
		}
	}
	if err := sendDatagram(f.fd, data, &f.peer.to); err != nil {
		if f.requests == 0 && errors.Is(err, unix.EAGAIN) {
			// The first send binds the flow's socket to an ephemeral
			// port: EAGAIN there means the port range is used up. The
			// flow has nothing to wait for; end it.
			fe.udp.drop(DropLocal)
			ln.logSocketError(fmt.Errorf("first datagram of a flow: %w", os.NewSyscallError("sendto", err)))
			f.close(CauseLocalError)
			return
		}
		fe.udp.drop(DropSendError)
		return
	}
	f.requests++
	f.lastActive = ln.loop.now
	n := uint64(len(data))
	f.bytesIn += n
	fe.udp.dgramsIn.Add(1)
	fe.bytesIn.Add(n)
	f.be.AddDatagrams(1, 0)
	f.be.AddBytes(n, 0)
}

// admit applies the checks every new flow passes, counting the drop when
// one fails: shutdown, access list, max_flows, per-client limits. On
// success the flow is reserved against max_flows and the client table.
func (ln *udpListener) admit(ip netip.Addr) bool {
	fe := ln.fe
	switch {
	case ln.draining || ln.loop.srv.stopping.Load():
		fe.udp.drop(DropShutdown)
		return false
	case !fe.acl.admits(ip):
		fe.udp.drop(DropAccessList)
		return false
	}
	if _, ok := reserveUnder(&fe.active, int64(fe.cfg.MaxFlows)); !ok {
		fe.udp.drop(DropMaxFlows)
		return false
	}
	if fe.clients != nil {
		switch fe.clients.admit(ip, ln.loop.now) {
		case refusedNone:
		case refusedRate:
			fe.active.Add(-1)
			fe.udp.drop(DropRateLimit)
			return false
		default:
			fe.active.Add(-1)
			fe.udp.drop(DropPerClient)
			return false
		}
	}
	return true
}

// unadmit returns what admit reserved.
func (ln *udpListener) unadmit(ip netip.Addr) {
	ln.fe.active.Add(-1)
	if ln.fe.clients != nil {
		ln.fe.clients.release(ip)
	}
}

// openFlow admits a new client, picks its backend and opens the backend
// socket. It returns nil, the datagram counted as dropped, when any step
// refuses.
func (ln *udpListener) openFlow(key flowKey) *flow {
	fe := ln.fe
	ip := key.clientAddr().Addr()
	if !ln.admit(ip) {
		return nil
	}
	be := fe.pick(keyFor(ip), nil)
	if be == nil {
		ln.unadmit(ip)
		fe.udp.drop(DropNoBackend)
		return nil
	}
	fd, err := sock.UDPSocket(be.Address())
	if err != nil {
		be.Release()
		ln.unadmit(ip)
		fe.udp.drop(DropLocal)
		ln.logSocketError(err)
		return nil
	}
	f := ln.loop.newFlow()
	f.ln, f.key, f.fd, f.be = ln, key, fd, be
	f.peer = fe.peers[be]
	f.client = sock.MakeRawAddr(key.client)
	f.id = ln.loop.srv.nextID.Add(1)
	f.start = ln.loop.now
	f.lastActive = ln.loop.now
	var gen uint32
	f.idx, gen = ln.loop.alloc(f)
	if err := ln.loop.poll.Add(fd, unix.EPOLLIN, token(f.idx, gen, 0)); err != nil {
		ln.loop.releaseSlot(f.idx)
		unix.Close(fd)
		be.Release()
		ln.unadmit(ip)
		ln.loop.recycleFlow(f)
		fe.udp.drop(DropLocal)
		ln.logSocketError(err)
		return nil
	}
	ln.flows[key] = f
	fe.total.Add(1)
	fe.notePeak(fe.active.Load())
	ln.loop.srv.flows.Add(1)
	ln.loop.wheel.Schedule(&f.timer, fe.cfg.IdleTimeout)
	return f
}

// fireAndForget sends a datagram for a frontend with responses = 0: a
// backend is picked for it alone and no flow is kept. The send goes out
// on the loop's shared socket for that backend.
func (ln *udpListener) fireAndForget(ip netip.Addr, data []byte) {
	fe := ln.fe
	if !ln.admit(ip) {
		return
	}
	ln.unadmit(ip) // nothing stays open
	be := fe.pick(keyFor(ip), nil)
	if be == nil {
		fe.udp.drop(DropNoBackend)
		return
	}
	defer be.Release()
	s, err := ln.loop.sink(fe, be)
	if err != nil {
		fe.udp.drop(DropLocal)
		ln.logSocketError(err)
		return
	}
	if err := sendDatagram(s.fd, data, &s.peer.to); err != nil {
		fe.udp.drop(DropSendError)
		return
	}
	n := uint64(len(data))
	fe.total.Add(1)
	fe.udp.dgramsIn.Add(1)
	fe.bytesIn.Add(n)
	be.AddDatagrams(1, 0)
	be.AddBytes(n, 0)
}

// sendDatagram sends data on a backend socket. An ICMP error that arrived
// since the last send leaves a pending error on the socket, which the next
// send returns (and clears) instead of sending: that send is retried once,
// so an earlier datagram's fate does not cost this one. The ICMP error
// itself stays on the error queue, where readErrors counts it.
func sendDatagram(fd int, data []byte, to *sock.RawAddr) error {
	err := sock.SendTo(fd, data, to)
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		err = sock.SendTo(fd, data, to)
	}
	return err
}

// logSocketError logs a failure to open a backend socket, at most once per
// acceptLogEvery, with the count of failures since the last line.
func (ln *udpListener) logSocketError(err error) {
	ln.errLogN++
	if now := ln.loop.now; now.Sub(ln.errLog) >= acceptLogEvery {
		ln.loop.srv.log.Warn().Err(err).Str("frontend", ln.fe.cfg.Name).Int("failures", ln.errLogN).
			Msg("cannot open a UDP socket to a backend; datagrams of new flows dropped")
		ln.errLog = now
		ln.errLogN = 0
	}
}

// drain stops opening flows; see draining.
func (ln *udpListener) drain() { ln.draining = true }

// close closes every flow and the socket.
func (ln *udpListener) close() {
	for _, f := range ln.flows {
		f.close(CauseShutdown)
	}
	if ln.fd < 0 {
		return
	}
	if ln.loop.replyLn == ln {
		ln.loop.flushReplies()
	}
	ln.loop.wheel.Stop(&ln.dropPoll)
	unix.Close(ln.fd)
	ln.fd = -1
	ln.loop.releaseSlot(ln.idx)
}

// serving reports whether b still takes the datagrams of its flows: it is
// up and not in maint.
func serving(b *backend.Backend) bool {
	return b.Healthy() && b.State() != backend.Maint
}

// replyBatch returns the batch to queue a reply of ln's in, made on first
// use. A batch holding another socket's replies is flushed first, and so
// is a full one.
func (l *loop) replyBatch(ln *udpListener) *sock.Batch {
	if l.replies == nil {
		l.replies = sock.NewBatch(udpBatch, sock.MaxDatagram, l.needPktinfo())
	}
	if (l.replyLn != nil && l.replyLn != ln) || l.replies.Queued() == l.replies.Slots() {
		l.flushReplies()
	}
	l.replyLn = ln
	return l.replies
}

// flushReplies sends the queued UDP replies with one sendmmsg and counts
// what went out, or was dropped, once it is known.
func (l *loop) flushReplies() {
	ln := l.replyLn
	if ln == nil {
		return
	}
	l.replyLn = nil
	b := l.replies
	n := b.Flush(ln.fd)
	var sent, bytes uint64
	for i := 0; i < n; i++ {
		be := l.replyBE[i]
		l.replyBE[i] = nil
		if !b.Sent(i) {
			ln.fe.udp.drop(DropSendError)
			continue
		}
		size := uint64(b.Len(i))
		sent++
		bytes += size
		be.AddDatagrams(0, 1)
		be.AddBytes(0, size)
	}
	ln.fe.udp.dgramsOut.Add(sent)
	ln.fe.bytesOut.Add(bytes)
}

// recvBatch returns the loop's receive batch, made on first use. One
// batch serves every UDP socket of the loop: a handler forwards what it
// read before it returns.
func (l *loop) recvBatch() *sock.Batch {
	if l.recv == nil {
		l.recv = sock.NewBatch(udpBatch, sock.MaxDatagram, l.needPktinfo())
	}
	return l.recv
}

// needPktinfo reports whether a UDP socket of the loop is bound to a
// wildcard address and so receives destination addresses.
func (l *loop) needPktinfo() bool {
	for _, ln := range l.udp {
		if ln.wildcard {
			return true
		}
	}
	return false
}
