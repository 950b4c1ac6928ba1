package l4

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/splice"
)

// wakeBudget bounds the bytes one direction of one connection moves per
// wake-up. A stream that still has data after that yields to the other
// handlers of the loop and continues on the next iteration, so one fat
// transfer cannot starve its neighbours.
const wakeBudget = 1 << 20

// bulkBelow is the fill size under which a direction that was splicing
// goes back to copying: see half.bulk.
const bulkBelow = 16 << 10

// half is one direction of a connection: bytes read from src are carried
// to dst through a pipe (splice) or, failing that, a user-space buffer.
//
// Invariants:
//   - A carrier is held only while it holds bytes, or for the duration of
//     a pump call: an idle direction holds none, so an idle connection
//     costs two sockets and its struct.
//   - The carrier is empty whenever pump fills it, so a Fill EAGAIN means
//     "src is empty" and never "pipe full" (see splice.Carrier).
//   - srcReady and dstReady mirror edge-triggered readiness: set by an
//     event, cleared only by EAGAIN.
type half struct {
	src, dst int

	carrier splice.Carrier // nil when none is held
	pipe    *splice.Pipe   // the carrier when it is a pipe
	buf     *splice.Buffer // the carrier when it is a buffer

	srcReady bool
	dstReady bool
	// srcHup is set once epoll reported EPOLLRDHUP or EPOLLHUP on src: its
	// FIN is in, so a short read must not be taken as "drained" (the EOF
	// behind the data would never raise another edge).
	srcHup bool
	eof    bool // src sent FIN
	shut   bool // FIN passed on: dst was shut down for writing

	// bulk selects the carrier for the next fill. Small messages (queries,
	// replies) are copied through a buffer: a short read proves the socket
	// drained, saving the EAGAIN read that splice needs, and the written
	// segments are whole instead of the page fragments splice passes on.
	// A read that fills the whole buffer means a stream: from then on the
	// direction splices, until a fill comes back under bulkBelow.
	bulk bool

	bytes     uint64 // delivered to dst over the connection's life
	unflushed uint64 // delivered but not yet added to the backend counters
}

// pumpResult says why pump returned.
type pumpResult uint8

const (
	pumpIdle      pumpResult = iota // src is empty; wait for an event
	pumpBlocked                     // dst is full; wait for EPOLLOUT on dst
	pumpMore                        // budget spent with src still readable
	pumpDone                        // src ended and its FIN was passed on
	pumpSrcFailed                   // reading src failed (reset, error)
	pumpDstFailed                   // writing dst failed (reset, EPIPE)
)

// empty reports whether no bytes wait in this direction.
func (h *half) empty() bool { return h.carrier == nil || h.carrier.Len() == 0 }

// finished reports whether this direction has ended and its FIN went out.
func (h *half) finished() bool { return h.shut }

// pump moves bytes from src to dst until src is empty, dst is full, the
// budget is spent, or an error. On failure the errno is returned as err.
func (c *conn) pump(h *half) (pumpResult, error) {
	budget := wakeBudget
	for {
		if !h.empty() {
			if !h.dstReady {
				return pumpBlocked, nil
			}
			n, err := h.carrier.Drain(h.dst)
			if n > 0 {
				h.bytes += uint64(n)
				h.unflushed += uint64(n)
				c.lastActive = c.loop.now
			}
			if err != nil {
				if errors.Is(err, unix.EAGAIN) {
					h.dstReady = false
					return pumpBlocked, nil
				}
				return pumpDstFailed, err
			}
			continue
		}
		// The carrier is empty: give it back before anything else, so that
		// no return path below leaves an idle direction holding one.
		c.dropCarrier(h)
		switch {
		case h.eof:
			if !h.shut {
				h.shut = true
				if c.other(h).eof {
					// dst sent its FIN and we read it: the connection is
					// about to close, and close(2) sends our FIN (its
					// receive queue is empty, so no reset). Skip the call.
					return pumpDone, nil
				}
				// ENOTCONN here means dst already went away; the other
				// direction will see that as its own EOF or error.
				_ = unix.Shutdown(h.dst, unix.SHUT_WR)
			}
			return pumpDone, nil
		case !h.srcReady:
			return pumpIdle, nil
		case budget <= 0:
			return pumpMore, nil
		}
		n, err := c.takeCarrier(h).Fill(h.src, budget)
		switch {
		case err == nil && n == 0:
			h.eof = true
		case err == nil:
			budget -= n
			h.adapt(n, budget)
		case errors.Is(err, unix.EAGAIN):
			h.srcReady = false
		case errors.Is(err, splice.ErrSpliceUnsupported):
			// This fd pair cannot splice: copy through buffers from now
			// on. The pipe is empty (Fill moved nothing), so dropping it
			// on the next turn loses nothing.
			c.noSplice = true
		default:
			c.dropCarrier(h)
			return pumpSrcFailed, err
		}
	}
}

// other returns the direction opposite h.
func (c *conn) other(h *half) *half {
	if h == &c.up {
		return &c.down
	}
	return &c.up
}

// adapt updates the carrier choice after a fill of n bytes that left
// budget, and notes when a short buffered read proved src drained.
func (h *half) adapt(n, budget int) {
	if h.buf == nil {
		if n < bulkBelow {
			h.bulk = false
		}
		return
	}
	switch {
	case n == h.buf.Cap():
		h.bulk = true
	case n < h.buf.Cap() && budget > 0 && !h.srcHup:
		// read(2) returned less than asked: the receive queue is empty
		// now, and edge-triggered epoll reports any later arrival.
		h.srcReady = false
	}
}

// takeCarrier gives h a pipe from the loop's cache when it is in bulk mode,
// else (or when the global pipe cap is reached, or this connection cannot
// splice) a buffer.
func (c *conn) takeCarrier(h *half) splice.Carrier {
	if h.carrier != nil {
		return h.carrier
	}
	if h.bulk && !c.noSplice {
		if p, ok := c.loop.pipes.GetPipe(); ok {
			h.pipe, h.carrier = p, p
			c.be.AddPipes(1)
			return p
		}
	}
	b := c.loop.pipes.GetBuffer()
	h.buf, h.carrier = b, b
	return b
}

// dropCarrier returns h's carrier to the cache. A pipe that still holds
// bytes (a connection torn down mid-transfer) is closed by the cache, never
// reused.
func (c *conn) dropCarrier(h *half) {
	switch {
	case h.pipe != nil:
		c.loop.pipes.PutPipe(h.pipe)
		c.be.AddPipes(-1)
	case h.buf != nil:
		c.loop.pipes.PutBuffer(h.buf)
	}
	h.carrier, h.pipe, h.buf = nil, nil, nil
}
