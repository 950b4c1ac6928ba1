package l4

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// The connection log: one line per ended TCP connection, UDP flow and
// client refused at accept, for the frontends whose log_connections asks
// for it.
//
// An event loop never formats nor writes a line. It copies a fixed-size
// record of the connection into its own ring (logRing), which one writer
// goroutine per server drains, formats and writes (connlogwrite.go).
// When the ring is full the record is dropped and counted, and the writer
// writes a summary line with the count: a stalled log destination (a full
// pipe, a slow disk) costs lines, never the data plane's throughput.
// docs/operations.md lists the fields; docs/benchmarks.md has the cost.

// logPolicy is the choice a frontend's config makes of the lines to
// write. frontendShared holds the one in force, which a reload replaces:
// the connections open at a reload are logged under the new choice.
type logPolicy struct {
	mode logMode
	// sample is the chance, out of 2^64, that a clean line of logAll is
	// kept; math.MaxUint64 keeps every one.
	sample uint64
	// slow makes a clean connection an error line when its backend took
	// longer than this to be ready; 0 is off.
	slow time.Duration
}

type logMode uint8

const (
	logOff logMode = iota
	logErrors
	logAll
)

// newLogPolicy is fc's log policy.
func newLogPolicy(fc *config.Frontend) *logPolicy {
	p := &logPolicy{slow: fc.LogSlow, sample: math.MaxUint64}
	switch fc.LogConnections {
	case config.LogAll:
		p.mode = logAll
	case config.LogErrors:
		p.mode = logErrors
	}
	if fc.LogSample > 0 && fc.LogSample < 1 {
		p.sample = uint64(fc.LogSample * (1 << 64))
	}
	return p
}

// wants reports whether a connection gets a line: clean says it ended
// cleanly, ready is how long its backend took to be ready (negative when
// it never was). Error lines are never sampled.
func (p *logPolicy) wants(clean bool, ready time.Duration) bool {
	switch {
	case p.mode == logOff:
		return false
	case !clean || (p.slow > 0 && ready > p.slow):
		return true
	case p.mode != logAll:
		return false
	}
	return p.sample == math.MaxUint64 || rand.Uint64() < p.sample
}

// logRecord is what the writer needs to format one line: copied by the
// loop, read by the writer. Backends and strings are immutable where they
// are read (a backend's name and address never change).
type logRecord struct {
	end, start time.Time
	id         uint64
	frontend   string
	client     netip.AddrPort
	listen     netip.AddrPort
	be         *backend.Backend // nil: none was connected
	cause      Cause
	udp        bool
	error      bool // an error line (not clean, or slow)
	ntried     uint8
	tried      [maxTries]*backend.Backend
	results    [maxTries]TryResult
	// TCP: the time queued, and the time connecting: from the first try
	// to the backend's accept, failed tries included (as HAProxy's Tc),
	// or to the end when no try succeeded; 0 without a try.
	// UDP: ready is the time to the first reply (0: none).
	queue, connect, ready time.Duration
	bytesIn, bytesOut     uint64
	dgramsIn, dgramsOut   uint64 // UDP
}

// logRing is a loop's ring of records: the loop is its only producer and
// the writer its only consumer, so two counters suffice. Records between
// head and tail are published; the loop fills the slot at tail in place
// and publishes it by moving tail.
type logRing struct {
	recs []logRecord
	head atomic.Uint64 // next record the writer reads
	tail atomic.Uint64 // next slot the loop fills
	// seenHead is the loop's last read of head: it reads head again
	// only when the ring looks full, so most pushes touch no cache line
	// the writer writes.
	seenHead uint64
	// dropped counts records the loop could not push: the ring was full.
	dropped atomic.Uint64
}

func newLogRing(n int) *logRing { return &logRing{recs: make([]logRecord, n)} }

// reserve returns the slot to fill, or nil (the drop counted) when the
// ring is full. Loop goroutine only; publish the slot with publish.
func (r *logRing) reserve() *logRecord {
	tail := r.tail.Load()
	n := uint64(len(r.recs))
	if tail-r.seenHead >= n {
		r.seenHead = r.head.Load()
		if tail-r.seenHead >= n {
			r.dropped.Add(1)
			return nil
		}
	}
	return &r.recs[tail%n]
}

// publish hands the slot reserve returned to the writer.
func (r *logRing) publish() { r.tail.Add(1) }

// pending is the number of records waiting for the writer.
func (r *logRing) pending() uint64 { return r.tail.Load() - r.head.Load() }

// logSlot returns the slot to fill with a record in the loop's ring (made
// on first use), or nil when the server has no connection log or the ring
// is full (the drop is counted). publishLog hands the slot to the writer.
func (l *loop) logSlot() *logRecord {
	if l.ring == nil {
		if l.ring = l.srv.connlog.ringFor(l.id); l.ring == nil {
			return nil
		}
	}
	return l.ring.reserve()
}

// publishLog publishes the slot logSlot returned and wakes the writer.
func (l *loop) publishLog() {
	l.ring.publish()
	l.srv.connlog.notify(l.ring)
}

// logEnd records the end of c, called by end with cause set and the
// backend slot still held.
func (c *conn) logEnd(cause Cause) {
	p := c.fe.logPolicy.Load()
	if p.mode == logOff {
		return
	}
	l := c.loop
	ready := time.Duration(-1)
	if c.connectedAt != 0 {
		ready = c.connectedAt.sub(1)
	}
	clean := cause.Clean()
	if !p.wants(clean, ready) {
		return
	}
	r := l.logSlot()
	if r == nil {
		return
	}
	*r = logRecord{
		end: l.now, start: c.start, id: c.id, frontend: c.fe.cfg.Name,
		client: c.client, listen: c.listen, cause: cause, error: !clean || p.slow > 0 && ready > p.slow,
		ntried: c.ntried, tried: c.tried, results: c.results,
		queue: c.queueWait, bytesIn: c.up.bytes, bytesOut: c.down.bytes,
	}
	switch {
	case ready >= 0:
		r.be = c.be
		r.connect = c.connectedAt.sub(c.firstTry)
	case c.firstTry != 0:
		r.connect = c.since(c.firstTry) // trying until the end
	}
	l.publishLog()
}

// logRefused records a client refused at accept (access list, per-client
// limits), which never had a connection of its own.
func (ln *listener) logRefused(peer netip.AddrPort, cause Cause) {
	if ln.fe.logPolicy.Load().mode == logOff {
		return
	}
	l := ln.loop
	r := l.logSlot()
	if r == nil {
		return
	}
	*r = logRecord{
		end: l.now, start: l.now, id: l.srv.nextID.Add(1), frontend: ln.fe.cfg.Name,
		client: peer, listen: ln.addr, cause: cause, error: true,
	}
	l.publishLog()
}

// logRefusedHandover records a connection or flow handed over at an
// upgrade that this process could not adopt and reset. The records this
// process refuses before they reach a loop (a hand-over message whose fds
// do not line up, a server stopping) have only the daemon log's warning.
func (l *loop) logRefusedHandover(r HandoffRecord) {
	fe := l.srv.frontend(r.Frontend)
	if fe == nil || fe.logPolicy.Load().mode == logOff {
		return
	}
	client, _ := netip.ParseAddrPort(r.Client)
	listen, _ := netip.ParseAddrPort(r.Listen)
	if !listen.IsValid() {
		listen = l.frontendAddr(fe)
	}
	if r.Kind == HandoffUDP && r.Local != "" {
		if local, err := netip.ParseAddr(r.Local); err == nil {
			listen = netip.AddrPortFrom(local, listen.Port())
		}
	}
	start := fromUnixNano(r.Start)
	if start.IsZero() {
		// A record without its start (one of a version this process
		// cannot read): a duration of 0, not one from the epoch.
		start = l.now
	}
	rec := l.logSlot()
	if rec == nil {
		return
	}
	*rec = logRecord{
		end: l.now, start: start, id: r.ID, frontend: fe.cfg.Name,
		client: client, listen: listen, cause: CauseHandoverRefused, error: true,
		udp: r.Kind == HandoffUDP, queue: time.Duration(r.QueueWait),
		bytesIn: r.BytesIn, bytesOut: r.BytesOut, dgramsIn: r.Requests, dgramsOut: r.Replies,
	}
	l.publishLog()
}

// frontendAddr is the address of one of fe's listeners on this loop, for
// a log line that has none of its own: a hand-over record from a process
// that did not send it.
func (l *loop) frontendAddr(fe *frontend) netip.AddrPort {
	for _, ln := range l.listeners {
		if ln.fe.frontendShared == fe.frontendShared {
			return ln.addr
		}
	}
	for _, ln := range l.udp {
		if ln.fe.frontendShared == fe.frontendShared {
			return ln.addr
		}
	}
	return netip.AddrPort{}
}

// logEnd records the end of flow f, called by close before f is cleared.
// A flow ended cleanly when it got every reply it expected, or when its
// idle timeout ended it after replies: with responses = -1 that is how
// every flow ends.
func (f *flow) logEnd(cause Cause) {
	ln := f.ln
	p := ln.fe.logPolicy.Load()
	if p.mode == logOff {
		return
	}
	l := ln.loop
	ready := time.Duration(-1)
	if !f.firstReply.IsZero() {
		ready = f.firstReply.Sub(f.start)
	}
	clean := cause == CauseReplied || cause == CauseIdleTimeout && f.replies > 0
	if !p.wants(clean, ready) {
		return
	}
	r := l.logSlot()
	if r == nil {
		return
	}
	listen := ln.addr
	if f.key.local.IsValid() {
		listen = netip.AddrPortFrom(f.key.local, ln.addr.Port())
	}
	*r = logRecord{
		end: l.now, start: f.start, id: f.id, frontend: ln.fe.cfg.Name,
		client: f.key.client, listen: listen, be: f.be, cause: cause, udp: true,
		error: !clean || p.slow > 0 && ready > p.slow, ready: max(ready, 0),
		bytesIn: f.bytesIn, bytesOut: f.bytesOut, dgramsIn: f.requests, dgramsOut: f.replies,
	}
	l.publishLog()
}
