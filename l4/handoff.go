package l4

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// Connection hand-over at a binary upgrade. A relayed TCP connection holds
// no protocol state in splicer: two sockets, a backend, counters and
// timers. Once the new process serves on the listening sockets, the old
// one sends it each connection's sockets (SCM_RIGHTS) and a record of the
// rest, and the new one adopts them into its loops: the connection goes
// on, its bytes never copied, dropped or reordered, since the kernel
// queues move with the sockets. See docs/operations.md, "Upgrading the
// binary".

// HandoffVersion is the version of HandoffRecord. A record of another
// version is refused by the adopting process (reset, cause
// CauseHandoverRefused). The rule: a change that an older reader would
// misread takes a new version; a field an older reader may ignore does not.
const HandoffVersion = 1

// Kinds of HandoffRecord.
const (
	// HandoffTCP is a relayed connection: FDs are the client's and the
	// backend's sockets.
	HandoffTCP = "tcp"
	// HandoffClient is a client not yet connected to a backend (it was
	// connecting, queued or waiting for an fd): FDs is its socket alone,
	// and the adopting process picks a backend for it afresh. Nothing was
	// sent to a backend: what the client sent waits in its socket.
	HandoffClient = "client"
	// HandoffUDP is a UDP flow: FDs is its socket towards the backend.
	HandoffUDP = "udp"
)

// HandoffRecord is what goes with a handed-over connection's sockets.
type HandoffRecord struct {
	V        int    `json:"v"`
	Kind     string `json:"kind"`
	ID       uint64 `json:"id"`
	Frontend string `json:"frontend"`
	// Backend and BackendAddr identify the backend (TCP, UDP): a backend
	// of the same name at the same address must exist in the adopting
	// process, or the record is refused.
	Backend     string `json:"backend,omitempty"`
	BackendAddr string `json:"backend_addr,omitempty"`
	Client      string `json:"client"`
	// Start and LastActive are unix nanoseconds: the idle and half-close
	// deadlines run on from LastActive under the adopting config.
	Start      int64  `json:"start"`
	LastActive int64  `json:"last_active"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	// UpShut and DownShut say a direction ended and its FIN was passed
	// on (client to backend, backend to client); FinFirst is the side
	// whose FIN came first (1 client, 2 backend, 0 none yet).
	UpShut    bool  `json:"up_shut,omitempty"`
	DownShut  bool  `json:"down_shut,omitempty"`
	FinFirst  uint8 `json:"fin_first,omitempty"`
	Served    bool  `json:"served,omitempty"`
	Keepalive bool  `json:"keepalive,omitempty"`
	// UDP: the frontend socket the flow's client writes to (its inode,
	// the same socket in both processes), the local address the client
	// wrote to on a wildcard socket, and the datagram counts.
	Socket   uint64 `json:"socket,omitempty"`
	Local    string `json:"local,omitempty"`
	Requests uint64 `json:"requests,omitempty"`
	Replies  uint64 `json:"replies,omitempty"`
	// For the connection log's line at the end: the address the client
	// connected to, the time spent queued (ns), and when the first
	// connect try began and the backend connect succeeded (unix ns, 0:
	// not yet). The tries before the one that connected are not carried.
	Listen    string `json:"listen,omitempty"`
	QueueWait int64  `json:"queue_wait,omitempty"`
	FirstTry  int64  `json:"first_try,omitempty"`
	Connected int64  `json:"connected,omitempty"`
	// Via and Dst are what a PROXY header told an accept_proxy frontend
	// besides the client: the peer that sent it and the address the
	// client connected to (the header sent on to a backend names it).
	Via string `json:"via,omitempty"`
	Dst string `json:"dst,omitempty"`
	// FDs is the number of fds that go with the record, in the order
	// above.
	FDs int `json:"fds"`
}

// HandoffStats counts what a hand-over did, on either side.
type HandoffStats struct {
	TCP, Clients, Flows int // handed over (old side) or adopted (new side)
	// Refused counts records the new side could not adopt (reset there);
	// Lost counts connections the old side detached and could not send
	// (reset).
	Refused, Lost int
	// Left counts connections the old side still held at the deadline:
	// they drain as at any shutdown.
	Left int
}

// handoffBatch bounds the connections one loop detaches per call, so a
// batch fits a message (two fds each).
const handoffBatch = 96

// handoffPoll is how often Handoff looks again for connections whose
// carriers have emptied.
const handoffPoll = 5 * time.Millisecond

// Handoff hands this server's connections and UDP flows over to the
// process that took its listening sockets (call HandOff first). Relaying
// connections stop reading both sides; once the bytes they hold are
// written out, each is detached from its loop and passed to send with its
// fds, in batches. send owns the fds it delivers (it closes them once
// sent). Connections not handed over by the time ctx ends (a peer that
// never reads, say) read again and drain as at a shutdown. A send error
// stops the hand-over: the records send did not deliver (all of the batch,
// or those after a *HandoffSendError's Sent) are taken back by this
// server, as the new process would have adopted them, and drain here with
// the rest; one it cannot take back is reset and counted as lost.
func (s *Server) Handoff(ctx context.Context, send func([]HandoffRecord, []int) error) (st HandoffStats) {
	s.eachLoop(func(l *loop) {
		for c := range l.liveConns() {
			c.handing = true
		}
	})
	defer s.eachLoop(func(l *loop) {
		for c := range l.liveConns() {
			if c.handing {
				c.handing = false
				st.Left++
				if c.state == stateRelaying {
					c.relay() // read again what waited meanwhile
				}
			}
		}
	})
	for {
		var recs []HandoffRecord
		var fds []int
		left := 0
		s.eachLoop(func(l *loop) {
			r, f, n := l.detach(handoffBatch)
			recs, fds = append(recs, r...), append(fds, f...)
			left += n
		})
		if len(recs) > 0 {
			err := send(recs, fds)
			sent := len(recs)
			if err != nil {
				sent = 0
				var pe *HandoffSendError
				if errors.As(err, &pe) {
					sent = min(max(pe.Sent, 0), len(recs))
				}
			}
			for _, r := range recs[:sent] {
				switch r.Kind {
				case HandoffTCP:
					st.TCP++
				case HandoffClient:
					st.Clients++
				case HandoffUDP:
					st.Flows++
				}
			}
			if err != nil {
				nfds := 0
				for _, r := range recs[:sent] {
					nfds += r.FDs
				}
				back := s.Adopt(recs[sent:], fds[nfds:])
				st.Left += back.TCP + back.Clients + back.Flows
				st.Lost += back.Refused
				s.log.Error().Err(err).Int("handed", sent).Int("taken_back", back.TCP+back.Clients+back.Flows).
					Int("lost", back.Refused).Msg("upgrade: hand-over stopped; what was not handed drains here")
				return st
			}
		}
		if left == 0 {
			return st
		}
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
				return st
			case <-time.After(handoffPoll):
			}
		}
	}
}

// HandoffSendError is what a Handoff sender returns when it delivered the
// first Sent records of a batch, and closed their fds, before Err stopped
// it; the other records' fds are still open and the sender's caller's.
type HandoffSendError struct {
	Sent int
	Err  error
}

// Error returns Err's text.
func (e *HandoffSendError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *HandoffSendError) Unwrap() error { return e.Err }

// resetAll closes fds with a reset: what was detached for a hand-over and
// cannot go.
func resetAll(fds []int) {
	for _, fd := range fds {
		_ = sock.SetLingerZero(fd)
		unix.Close(fd)
	}
}

// detach takes up to max connections and flows ready to be handed over
// out of the loop and returns their records and fds, and how many are
// still waiting.
func (l *loop) detach(max int) ([]HandoffRecord, []int, int) {
	var recs []HandoffRecord
	var fds []int
	left := 0
	for c := range l.liveConns() {
		if !c.handing {
			continue
		}
		if len(recs) >= max || !c.ready() {
			left++
			continue
		}
		r, f := c.detach()
		recs, fds = append(recs, r), append(fds, f...)
	}
	for _, ln := range l.udp {
		ino := socketInode(ln.fd)
		for _, f := range ln.flows {
			if len(recs) >= max {
				left++
				continue
			}
			r, fd := f.detach(ino)
			recs, fds = append(recs, r), append(fds, fd)
		}
	}
	return recs, fds, left
}

// ready reports whether c can be handed over now: relaying with nothing in
// its carriers (so no byte is copied, dropped or reordered) and no socket
// failed, or not yet connected to a backend. A closing connection ends here.
func (c *conn) ready() bool {
	switch c.state {
	case stateConnecting, stateQueued, stateStarved:
		return c.failed == 0
	case stateRelaying:
		return c.failed == 0 && c.up.empty() && c.down.empty()
	}
	return false
}

// detach removes c from its loop and returns its record and fds; c's
// reservations in this process are returned, and no cause is counted: the
// connection goes on elsewhere.
func (c *conn) detach() (HandoffRecord, []int) {
	l := c.loop
	r := HandoffRecord{
		V: HandoffVersion, ID: c.id, Frontend: c.fe.cfg.Name, Client: c.client.String(),
		Start: c.start.UnixNano(), LastActive: c.time(c.lastActive).UnixNano(),
		BytesIn: c.up.bytes, BytesOut: c.down.bytes,
		Listen: c.listen.String(), QueueWait: int64(c.queueWait),
		FirstTry: unixNano(c.time(c.firstTry)), Connected: unixNano(c.time(c.connectedAt)),
	}
	if p := c.proxied; p != nil {
		r.Via, r.Dst = p.via.String(), p.dst.String()
	}
	fds := []int{c.cfd}
	_ = l.poll.Delete(c.cfd)
	if c.state == stateRelaying {
		r.Kind = HandoffTCP
		r.Backend, r.BackendAddr = c.be.Name(), c.be.Address().String()
		r.UpShut, r.DownShut, r.FinFirst = c.up.shut, c.down.shut, c.finFirst
		r.Served, r.Keepalive = c.served, c.keepalive
		fds = append(fds, c.bfd)
		_ = l.poll.Delete(c.bfd)
	} else {
		r.Kind = HandoffClient
		if c.state == stateQueued {
			c.fe.queue.remove(c)
		}
		if c.bfd >= 0 {
			// A connect under way: the new process connects afresh.
			unix.Close(c.bfd)
		}
	}
	r.FDs = len(fds)
	l.wheel.Stop(&c.timer)
	c.flush()
	c.dropCarrier(&c.up)
	c.dropCarrier(&c.down)
	if b := c.be; b != nil {
		c.be = nil
		b.Release()
		c.fe.slotFreed(b)
	}
	if t := c.fe.clients; t != nil && c.admitted {
		t.release(c.client.Addr())
	}
	c.state = stateClosed
	l.releaseSlot(c.idx)
	l.srv.connDone(c.fe)
	if !c.queued {
		l.recycle(c)
	}
	return r, fds
}

// detach removes the flow from its loop and returns its record and its
// socket; ino is the inode of its frontend socket.
func (f *flow) detach(ino uint64) (HandoffRecord, int) {
	ln := f.ln
	l := ln.loop
	r := HandoffRecord{
		V: HandoffVersion, Kind: HandoffUDP, ID: f.id, Frontend: ln.fe.cfg.Name,
		Backend: f.be.Name(), BackendAddr: f.be.Address().String(), Client: f.key.client.String(),
		Start: f.start.UnixNano(), LastActive: f.lastActive.UnixNano(),
		BytesIn: f.bytesIn, BytesOut: f.bytesOut, Socket: ino,
		Requests: f.requests, Replies: f.replies, FDs: 1,
	}
	if f.key.local.IsValid() {
		r.Local = f.key.local.String()
	}
	fd := f.fd
	_ = l.poll.Delete(fd)
	f.release()
	return r, fd
}

// socketInode identifies a socket across processes; 0 when unknown.
func socketInode(fd int) uint64 {
	var st unix.Stat_t
	if fd < 0 || unix.Fstat(fd, &st) != nil {
		return 0
	}
	return st.Ino
}

// ReserveIDs makes every connection ID this server gives from now on at
// least next: a new process takes the IDs after the old one's, so those it
// adopts keep theirs without a clash. Call it before Start.
func (s *Server) ReserveIDs(next uint64) {
	for {
		cur := s.nextID.Load()
		if cur >= next || s.nextID.CompareAndSwap(cur, next) {
			return
		}
	}
}

// NextID is the next connection ID the server would give.
func (s *Server) NextID() uint64 { return s.nextID.Load() + 1 }

// Adopt takes over connections and flows handed over by the previous
// process, with their fds, and returns what it did. Adopt owns every fd:
// what it cannot adopt (a record of an unknown version or kind, a frontend
// or backend this config lacks, a cap reached) is reset and counted as
// CauseHandoverRefused. Call it after Start.
func (s *Server) Adopt(recs []HandoffRecord, fds []int) HandoffStats {
	var st HandoffStats
	type item struct {
		r   HandoffRecord
		fds []int
	}
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	byLoop := make([][]item, len(loops))
	var inodes map[uint64]int // UDP frontend sockets, by inode: the loop owning each
	next := 0
	for i, r := range recs {
		n := r.FDs
		if n < 1 || n > len(fds) {
			// The fds no longer line up with the records: refuse the rest.
			for _, r := range recs[i:] {
				s.refuse(r, nil, fmt.Errorf("%d fds for a record of %d", len(fds), r.FDs))
				st.Refused++
			}
			resetAll(fds)
			fds = nil
			break
		}
		it := item{r, fds[:n:n]}
		fds = fds[n:]
		if len(loops) == 0 {
			s.refuse(r, it.fds, errors.New("the server is not started"))
			st.Refused++
			continue
		}
		li := next % len(loops)
		next++
		if r.Kind == HandoffUDP {
			// A flow lives on the loop that owns its frontend socket.
			if inodes == nil {
				inodes = s.udpSockets()
			}
			li = inodes[r.Socket] // 0, when unknown: that loop refuses it
		}
		byLoop[li] = append(byLoop[li], it)
	}
	resetAll(fds) // fds beyond the records, if any
	done := make(chan HandoffStats, len(loops))
	for i, l := range loops {
		items := byLoop[i]
		if !l.post(func(l *loop) {
			var ls HandoffStats
			for _, it := range items {
				if err := l.adoptHanded(it.r, it.fds); err != nil {
					l.srv.refuse(it.r, it.fds, err)
					l.logRefusedHandover(it.r)
					ls.Refused++
					continue
				}
				switch it.r.Kind {
				case HandoffTCP:
					ls.TCP++
				case HandoffClient:
					ls.Clients++
				case HandoffUDP:
					ls.Flows++
				}
			}
			done <- ls
		}) {
			for _, it := range items {
				s.refuse(it.r, it.fds, errors.New("the server stopped"))
			}
			done <- HandoffStats{Refused: len(items)}
		}
	}
	for range loops {
		ls := <-done
		st.TCP += ls.TCP
		st.Clients += ls.Clients
		st.Flows += ls.Flows
		st.Refused += ls.Refused
	}
	return st
}

// udpSockets maps the inode of every UDP frontend socket to the index of
// the loop that owns it.
func (s *Server) udpSockets() map[uint64]int {
	m := make(map[uint64]int)
	s.eachLoop(func(l *loop) {
		for _, ln := range l.udp {
			if ino := socketInode(ln.fd); ino != 0 {
				m[ino] = l.id
			}
		}
	})
	return m
}

// refuse resets the fds of a record that cannot be adopted and counts it.
func (s *Server) refuse(r HandoffRecord, fds []int, why error) {
	resetAll(fds)
	if fe := s.frontend(r.Frontend); fe != nil {
		fe.closed[CauseHandoverRefused].Add(1)
	}
	s.log.Warn().Err(why).Uint64("conn", r.ID).Str("frontend", r.Frontend).Str("kind", r.Kind).
		Msg("upgrade: a handed-over connection could not be adopted; reset")
}

// adoptHanded makes a handed-over connection or flow this loop's.
func (l *loop) adoptHanded(r HandoffRecord, fds []int) error {
	if r.V != HandoffVersion {
		return fmt.Errorf("record version %d, this process reads %d", r.V, HandoffVersion)
	}
	fe := l.srv.frontend(r.Frontend)
	if fe == nil {
		return fmt.Errorf("no frontend %q", r.Frontend)
	}
	client, err := netip.ParseAddrPort(r.Client)
	if err != nil {
		return fmt.Errorf("client address: %w", err)
	}
	switch r.Kind {
	case HandoffTCP:
		if len(fds) != 2 || fe.cfg.Protocol != config.ProtocolTCP {
			return errors.New("not a TCP connection of a TCP frontend")
		}
		return l.adoptConn(fe, r, client, fds[0], fds[1])
	case HandoffClient:
		if len(fds) != 1 || fe.cfg.Protocol != config.ProtocolTCP {
			return errors.New("not a client of a TCP frontend")
		}
		return l.adoptClient(fe, r, client, fds[0])
	case HandoffUDP:
		if len(fds) != 1 || fe.cfg.Protocol != config.ProtocolUDP {
			return errors.New("not a flow of a UDP frontend")
		}
		return l.adoptFlow(fe, r, client, fds[0])
	}
	return fmt.Errorf("unknown kind %q", r.Kind)
}

// handedBackend finds the record's backend in fe and takes a slot on it
// for a connection that exists already: its state and health do not
// matter (a drained backend keeps its connections), its cap does.
func handedBackend(fe *frontend, r HandoffRecord) (*backend.Backend, error) {
	for _, b := range fe.backends {
		if b.Name() == r.Backend && b.Address().String() == r.BackendAddr {
			if !b.TryAdopt() {
				return nil, fmt.Errorf("backend %q is at its max_connections", b.Name())
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("no backend %q at %s", r.Backend, r.BackendAddr)
}

// reserveAdopted takes the global and frontend caps for an adopted client.
func (l *loop) reserveAdopted(fe *frontend) error {
	switch l.srv.reserveAt(fe) {
	case capNone:
		return nil
	case capFrontend:
		return errors.New("the frontend's max_connections is reached")
	default:
		return errors.New("global max_connections is reached, or the server is stopping")
	}
}

// adoptConn makes a relayed connection this loop's.
func (l *loop) adoptConn(fe *frontend, r HandoffRecord, client netip.AddrPort, cfd, bfd int) error {
	if err := l.reserveAdopted(fe); err != nil {
		return err
	}
	b, err := handedBackend(fe, r)
	if err != nil {
		l.srv.connDone(fe)
		return err
	}
	if t := fe.clients; t != nil {
		t.adopt(client.Addr())
	}
	c := l.newConn()
	c.fe, c.cfd, c.bfd, c.client, c.be = fe, cfd, bfd, client, b
	c.admitted = fe.clients != nil // counted above: end releases it
	c.id, c.start = r.ID, time.Unix(0, r.Start)
	c.key = keyFor(client.Addr())
	c.tried[0], c.results[0], c.ntried = b, TryConnected, 1
	c.adoptLogFields(r)
	c.lastActive = c.stampOf(time.Unix(0, r.LastActive))
	c.up.src, c.up.dst, c.down.src, c.down.dst = cfd, bfd, bfd, cfd
	c.up.bytes, c.down.bytes = r.BytesIn, r.BytesOut
	c.up.eof, c.up.shut = r.UpShut, r.UpShut
	c.down.eof, c.down.shut = r.DownShut, r.DownShut
	c.finFirst, c.served, c.keepalive = r.FinFirst, r.Served, r.Keepalive
	c.idx, c.gen = l.alloc(c)
	c.state = stateRelaying
	if err := l.poll.Add(cfd, connEvents, token(c.idx, c.gen, sideClient)); err != nil {
		c.end(CauseLocalError)
		return nil // ended and counted: not a refusal
	}
	if err := l.poll.Add(bfd, connEvents, token(c.idx, c.gen, sideBackend)); err != nil {
		c.end(CauseLocalError)
		return nil
	}
	// Edges that came while the sockets changed hands were seen by no
	// one: read and write until EAGAIN says otherwise.
	for _, h := range []*half{&c.up, &c.down} {
		h.srcReady, h.dstReady = !h.shut, true
	}
	c.armIdle()
	c.relay()
	return nil
}

// adoptLogFields takes what the connection log needs from a hand-over
// record. A record of an older process without them logs the connection
// with an address of its frontend and no connect time.
func (c *conn) adoptLogFields(r HandoffRecord) {
	c.listen, _ = netip.ParseAddrPort(r.Listen)
	if !c.listen.IsValid() {
		c.listen = c.loop.frontendAddr(c.fe)
	}
	c.queueWait = time.Duration(r.QueueWait)
	if via, err := netip.ParseAddrPort(r.Via); err == nil {
		dst, _ := netip.ParseAddrPort(r.Dst)
		c.proxied = &proxied{via: via, dst: dst}
	}
	c.firstTry, c.connectedAt = c.stampOf(fromUnixNano(r.FirstTry)), c.stampOf(fromUnixNano(r.Connected))
}

// unixNano is t in unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano undoes unixNano.
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// adoptClient takes a client not yet connected and picks a backend for it.
func (l *loop) adoptClient(fe *frontend, r HandoffRecord, client netip.AddrPort, fd int) error {
	if err := l.reserveAdopted(fe); err != nil {
		return err
	}
	if t := fe.clients; t != nil {
		t.adopt(client.Addr())
	}
	c := l.newConn()
	c.fe, c.cfd, c.bfd, c.client = fe, fd, -1, client
	c.admitted = fe.clients != nil // counted above: end releases it
	c.state = stateConnecting
	c.id, c.start = r.ID, time.Unix(0, r.Start)
	c.adoptLogFields(r)
	c.key = keyFor(client.Addr())
	c.lastActive = c.stampNow()
	c.idx, c.gen = l.alloc(c)
	if err := l.poll.Add(fd, connEvents, token(c.idx, c.gen, sideClient)); err != nil {
		c.end(CauseLocalError)
		return nil
	}
	// Whatever the client sent waits in its socket.
	c.up.srcReady = true
	c.connectNext()
	return nil
}

// adoptFlow makes a UDP flow this loop's, on the frontend socket it lived
// on in the old process.
func (l *loop) adoptFlow(fe *frontend, r HandoffRecord, client netip.AddrPort, fd int) error {
	var ln *udpListener
	for _, u := range l.udp {
		if u.fe.frontendShared == fe.frontendShared && r.Socket != 0 && socketInode(u.fd) == r.Socket {
			ln = u
		}
	}
	if ln == nil {
		return errors.New("its frontend socket is not served here")
	}
	key := flowKey{client: client}
	if r.Local != "" {
		local, err := netip.ParseAddr(r.Local)
		if err != nil {
			return fmt.Errorf("local address: %w", err)
		}
		key.local = local
	}
	if ln.flows[key] != nil {
		return errors.New("a flow of that client exists already")
	}
	n, ok := reserveUnder(&fe.active, int64(fe.cfg.MaxFlows))
	if !ok {
		return errors.New("max_flows is reached")
	}
	b, err := handedBackend(fe, r)
	if err != nil {
		fe.active.Add(-1)
		return err
	}
	if t := fe.clients; t != nil {
		t.adopt(client.Addr())
	}
	fe.notePeak(n)
	f := l.newFlow()
	f.ln, f.key, f.fd, f.be = ln, key, fd, b
	f.peer = fe.peers[b]
	f.client = sock.MakeRawAddr(client)
	f.id, f.start = r.ID, time.Unix(0, r.Start)
	f.lastActive = time.Unix(0, r.LastActive)
	f.requests, f.replies = r.Requests, r.Replies
	f.bytesIn, f.bytesOut = r.BytesIn, r.BytesOut
	var gen uint32
	f.idx, gen = l.alloc(f)
	if err := l.poll.Add(fd, unix.EPOLLIN, token(f.idx, gen, 0)); err != nil {
		l.releaseSlot(f.idx)
		b.Release()
		ln.unadmit(client.Addr())
		l.recycleFlow(f)
		return fmt.Errorf("registering its socket: %w", err)
	}
	ln.flows[key] = f
	l.srv.flows.Add(1)
	l.wheel.Schedule(&f.timer, max(fe.cfg.IdleTimeout-l.now.Sub(f.lastActive), 0))
	// Replies that came while it changed hands.
	f.readReplies()
	return nil
}
