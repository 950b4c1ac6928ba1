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
	eof      bool // src sent FIN
	shut     bool // FIN passed on: dst was shut down for writing

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
				// ENOTCONN here means dst already went away; the other
				// direction will see that as its own EOF or error.
				_ = unix.Shutdown(h.dst, unix.SHUT_WR)
				h.shut = true
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

// takeCarrier gives h a pipe from the loop's cache, or a buffer when the
// global pipe cap is reached or this connection cannot splice.
func (c *conn) takeCarrier(h *half) splice.Carrier {
	if h.carrier != nil {
		return h.carrier
	}
	if !c.noSplice {
		if p, ok := c.loop.pipes.GetPipe(); ok {
			h.pipe, h.carrier = p, p
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
	case h.buf != nil:
		c.loop.pipes.PutBuffer(h.buf)
	}
	h.carrier, h.pipe, h.buf = nil, nil, nil
}
