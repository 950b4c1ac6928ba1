package backend

import (
	"sync/atomic"
	"time"
)

// counters are the per-backend traffic counters the data plane updates and
// stats read. Updates are single atomic adds: no lock, no allocation.
type counters struct {
	total     atomic.Uint64
	bytesUp   atomic.Uint64
	bytesDown atomic.Uint64
	failures  [NumFailReasons]atomic.Uint64
	resets    atomic.Uint64
	pipes     atomic.Int64
	connect   Histogram
	// UDP: datagrams each way, and replies dropped for coming from an
	// address other than the backend's.
	dgramsUp   atomic.Uint64
	dgramsDown atomic.Uint64
	foreign    atomic.Uint64
	// closed counts connections to the backend by how they ended, indexed
	// by the data plane's termination cause.
	closed [CloseCauseSlots]atomic.Uint64
}

// CloseCauseSlots is the number of termination causes a backend can count
// connections under (see AddClosed). The data plane owns the causes and
// their names and checks at compile time that they fit.
const CloseCauseSlots = 24

// AddClosed counts one connection to the backend that ended with the data
// plane's termination cause number cause; a number out of range is ignored.
func (b *Backend) AddClosed(cause int) {
	if uint(cause) < CloseCauseSlots {
		b.ctr.closed[cause].Add(1)
	}
}

// AddBytes counts bytes relayed: up from client to backend, down from
// backend to client.
func (b *Backend) AddBytes(up, down uint64) {
	if up != 0 {
		b.ctr.bytesUp.Add(up)
	}
	if down != 0 {
		b.ctr.bytesDown.Add(down)
	}
}

// AddFailure counts one failed connect; an unknown reason counts as
// FailOther.
func (b *Backend) AddFailure(r FailReason) {
	if int(r) >= NumFailReasons {
		r = FailOther
	}
	b.ctr.failures[r].Add(1)
}

// AddPipes moves the count of splice pipes this backend's connections hold
// by delta (+1 when a connection takes one, -1 when it gives it back).
func (b *Backend) AddPipes(delta int64) { b.ctr.pipes.Add(delta) }

// AddReset counts a connection the backend broke after it was established:
// its socket failed (a reset, a keepalive timeout) before its stream was
// complete, which the data plane passes on to the client as a reset once
// the bytes the backend sent before it are delivered.
func (b *Backend) AddReset() { b.ctr.resets.Add(1) }

// AddDatagrams counts UDP datagrams relayed: up from client to backend,
// down from backend to client.
func (b *Backend) AddDatagrams(up, down uint64) {
	if up != 0 {
		b.ctr.dgramsUp.Add(up)
	}
	if down != 0 {
		b.ctr.dgramsDown.Add(down)
	}
}

// AddForeign counts a datagram dropped on a socket towards this backend
// because it came from another address: a spoofed reply, or a backend
// answering from an address other than the one it is configured under.
func (b *Backend) AddForeign() { b.ctr.foreign.Add(1) }

// ObserveConnect records the time a successful connect took; a negative
// duration counts as zero.
func (b *Backend) ObserveConnect(d time.Duration) { b.ctr.connect.Observe(d) }

// Stats is a point-in-time copy of a backend's counters. Each field is read
// atomically; the fields are not read together, so a counter may run a
// little ahead of another.
type Stats struct {
	// Active is the number of connections held now (see Backend.Active).
	Active int64
	// Total counts successful TryAcquire calls: connections assigned to
	// the backend, including those whose connect failed afterwards.
	Total uint64
	// BytesUp and BytesDown count bytes relayed client to backend and
	// backend to client.
	BytesUp, BytesDown uint64
	// Failures counts failed connects, indexed by FailReason.
	Failures [NumFailReasons]uint64
	// Resets counts established connections the backend broke.
	Resets uint64
	// Pipes is the number of splice pipes its connections hold now.
	Pipes int64
	// Connect is the connect-time histogram of successful connects.
	Connect Durations
	// DatagramsUp and DatagramsDown count UDP datagrams relayed client to
	// backend and back; Foreign counts replies dropped for coming from
	// another address (see AddForeign).
	DatagramsUp, DatagramsDown uint64
	Foreign                    uint64
	// Closed counts ended connections by termination cause number (see
	// AddClosed).
	Closed [CloseCauseSlots]uint64
}

// Stats returns a copy of the backend's counters.
func (b *Backend) Stats() Stats {
	s := Stats{
		Active:    b.active.Load(),
		Total:     b.ctr.total.Load(),
		BytesUp:   b.ctr.bytesUp.Load(),
		BytesDown: b.ctr.bytesDown.Load(),
		Resets:    b.ctr.resets.Load(),
		Pipes:     b.ctr.pipes.Load(),
		Connect:   b.ctr.connect.Read(),

		DatagramsUp:   b.ctr.dgramsUp.Load(),
		DatagramsDown: b.ctr.dgramsDown.Load(),
		Foreign:       b.ctr.foreign.Load(),
	}
	for i := range b.ctr.failures {
		s.Failures[i] = b.ctr.failures[i].Load()
	}
	for i := range b.ctr.closed {
		s.Closed[i] = b.ctr.closed[i].Load()
	}
	return s
}
