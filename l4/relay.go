package l4

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/splice"
)

// wakeBudget bounds the bytes one direction of one connection moves per
// wake-up. A stream that still has data after that yields to the other
// handlers of the loop and continues on the next iteration, so one fat
// transfer cannot starve its neighbours.
const wakeBudget = 1 << 20

// The carrier choice has hysteresis, as HAProxy's splice-auto has (a
// channel becomes a "fast streamer" after three reads that each fill its
// buffer): see half.bulk.
const (
	// bulkBelow is the fill size under which a splice counts as small.
	bulkBelow = 16 << 10
	// bulkAfter is how many buffer reads in a row must fill the whole
	// buffer before a direction splices. A burst a little larger than
	// the buffer (a pipelined batch of mid-sized values) fills it once
	// and leaves a short tail, which is cheaper copied than spliced.
	bulkAfter = 3
	// copyAfter is how many small splices in a row send a splicing
	// direction back to copying.
	copyAfter = 2
)

// half is one direction of a connection: bytes read from src are carried
// to dst through a pipe (splice) or, failing that, a user-space buffer.
//
// Invariants:
//   - A carrier is held only while it holds bytes, or for the duration of
//     a pump call: an idle direction holds none, so an idle connection
//     costs two sockets and its struct.
//   - The carrier is empty whenever pump fills it, so a Fill EAGAIN means
//     "src is empty" and never "pipe full" (see splice.Carrier), and a
//     Fill error means every byte read from src before it was delivered
//     or is still in the carrier being delivered. The one exception holds
//     no src byte: a buffer holding only a PROXY header, not yet written,
//     may be filled behind it (join).
//   - srcReady and dstReady mirror edge-triggered readiness: set by an
//     event, cleared only by EAGAIN (or a read that proved src drained).
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
	// urgent is set when epoll reported EPOLLPRI on src: TCP urgent data
	// arrived. Both sockets carry it inline (SO_OOBINLINE), but splice(2)
	// stops at the urgent mark for good and recv(2) stops short before
	// it, so the direction copies and reads until EAGAIN, which it only
	// gets past the mark.
	urgent bool
	eof    bool // src ended: FIN read, or (with srcErr) its socket failed
	srcErr bool // src ended with an error, not a FIN: nothing more comes
	shut   bool // FIN passed on: dst was shut down for writing
	// dead is set when dst failed: what this direction holds or would
	// read can no longer be delivered, so it moves nothing more.
	dead bool

	// bulk selects the carrier for the next fill. Small messages (queries,
	// replies) are copied through a buffer: a short read proves the socket
	// drained, saving the EAGAIN read that splice needs, and the written
	// segments are whole instead of the page fragments splice passes on.
	// bulkAfter reads in a row that fill the whole buffer mean a stream:
	// from then on the direction splices, until copyAfter splices in a
	// row come back under bulkBelow. fulls and smalls count those runs;
	// like bulk they are hints, not state, and start from zero after an
	// upgrade hands the connection over.
	bulk   bool
	fulls  uint8
	smalls uint8

	bytes     uint64 // delivered to dst over the connection's life
	unflushed uint64 // delivered but not yet added to the backend counters

	// ours counts the bytes at the front of the carrier that splicer
	// wrote itself, a PROXY header: delivered first, never counted as
	// relayed.
	ours int
	// join is set while a PROXY header waits in the carrier, not yet
	// written: the next pump reads the client's first bytes in behind it
	// when they are already there, so that one write carries both.
	join bool
}

// pumpResult says why pump returned.
type pumpResult uint8

const (
	pumpIdle      pumpResult = iota // src is empty, or the direction is dead; wait for an event
	pumpBlocked                     // dst is full; wait for EPOLLOUT on dst
	pumpMore                        // budget spent with src still readable
	pumpDone                        // src ended and its FIN was passed on
	pumpSrcFailed                   // src failed; everything read before was delivered
	pumpDstFailed                   // writing dst failed; what the carrier held is lost
	pumpLocal                       // a local failure: neither peer is to blame
)

var pumpNames = [...]string{
	pumpIdle: "idle", pumpBlocked: "blocked", pumpMore: "more", pumpDone: "done",
	pumpSrcFailed: "src failed", pumpDstFailed: "dst failed", pumpLocal: "local failure",
}

// String names the result for debugging.
func (r pumpResult) String() string {
	if int(r) < len(pumpNames) {
		return pumpNames[r]
	}
	return fmt.Sprintf("pump(%d)", r)
}

// empty reports whether no bytes wait in this direction.
func (h *half) empty() bool { return h.carrier == nil || h.carrier.Len() == 0 }

// finished reports whether this direction has ended: its FIN went out, or
// it can move nothing more (its src failed and everything read was
// delivered, or its dst failed).
func (h *half) finished() bool { return h.shut || h.dead || (h.srcErr && h.empty()) }

// pump moves bytes from src to dst until src is empty, dst is full, the
// budget is spent, or an error. On failure the error is returned as err.
func (c *conn) pump(h *half) (pumpResult, error) {
	if h.dead {
		return pumpIdle, nil
	}
	budget := wakeBudget
	for {
		if !h.empty() {
			if h.join {
				// A PROXY header waits alone in a buffer: when the
				// client's first bytes are there, read them in behind
				// it and write both at once.
				h.join = false
				if h.srcReady && !h.eof && !h.urgent && h.buf != nil {
					asked := min(budget, h.buf.Room())
					n, err := h.buf.FillAfter(h.src, asked)
					if res, err, stop := c.filled(h, n, err, &budget); stop {
						return res, err
					}
					if n == asked {
						h.srcReady = true // cut short by the room left, not drained
					}
					continue
				}
			}
			if !h.dstReady {
				return pumpBlocked, nil
			}
			n, err := h.carrier.Drain(h.dst)
			if n > 0 {
				c.lastActive = c.stampNow()
				if h.ours > 0 {
					k := min(n, h.ours)
					h.ours -= k
					n -= k
				}
				h.bytes += uint64(n)
				h.unflushed += uint64(n)
			}
			if err != nil {
				if errors.Is(err, unix.EAGAIN) {
					h.dstReady = false
					return pumpBlocked, nil
				}
				if isLocalError(err) {
					return pumpLocal, err
				}
				return pumpDstFailed, err
			}
			continue
		}
		// The carrier is empty: give it back before anything else, so that
		// no return path below leaves an idle direction holding one.
		c.dropCarrier(h)
		switch {
		case h.srcErr:
			return pumpSrcFailed, nil
		case h.eof:
			if !h.shut {
				h.shut = true
				if c.other(h).eof && c.failed == 0 {
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
		case !h.srcReady || c.handing:
			return pumpIdle, nil
		case budget <= 0:
			return pumpMore, nil
		}
		n, err := c.takeCarrier(h).Fill(h.src, budget)
		if res, err, stop := c.filled(h, n, err, &budget); stop {
			return res, err
		}
	}
}

// filled applies the outcome of a fill of h that read n bytes or failed
// with err, spending budget; stop is set, with pump's result, when pump
// must return.
func (c *conn) filled(h *half, n int, err error, budget *int) (res pumpResult, _ error, stop bool) {
	switch {
	case err == nil && n == 0 && h.pipe != nil && sock.AtUrgentMark(h.src):
		// splice returns 0 at the urgent mark once the FIN is in too,
		// though bytes wait behind the mark: not the EOF.
		h.urgent = true
		h.toCopy()
		c.dropCarrier(h)
	case err == nil && n == 0:
		h.eof = true
		if c.finFirst == 0 {
			c.finFirst = uint8(c.srcSide(h)) + 1
		}
	case err == nil:
		*budget -= n
		h.adapt(n, *budget)
	case errors.Is(err, unix.EAGAIN):
		if h.urgent && h.pipe != nil {
			// splice stops at the urgent mark: copy past it.
			h.toCopy()
			c.dropCarrier(h)
			return 0, nil, false
		}
		h.srcReady = false
		h.urgent = false
	case errors.Is(err, splice.ErrSpliceUnsupported):
		// This fd pair cannot splice: copy through buffers from now on.
		// The pipe is empty (Fill moved nothing), so dropping it on the
		// next turn loses nothing.
		c.noSplice = true
	case isLocalError(err):
		c.dropCarrier(h)
		return pumpLocal, err, true
	default:
		// Whatever the carrier held goes: the bytes read before the
		// failure were delivered (the carrier is empty when pump fills
		// it), and a PROXY header waiting for the first bytes was no
		// client's.
		c.dropCarrier(h)
		h.eof, h.srcErr = true, true
		return pumpSrcFailed, err, true
	}
	return 0, nil, false
}

// isLocalError reports whether a read or write failed for a reason that
// says nothing about the peer: a resource of ours ran out, the fd pair
// cannot splice, or a carrier invariant broke.
func isLocalError(err error) bool {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return true // ErrSpliceUnsupported, io.ErrNoProgress, ErrNotEmpty, ...
	}
	switch errno {
	case unix.ENOMEM, unix.ENOBUFS, unix.EBADF, unix.EFAULT, unix.EINVAL, unix.ENOTSOCK:
		return true
	}
	return false
}

// other returns the direction opposite h.
func (c *conn) other(h *half) *half {
	if h == &c.up {
		return &c.down
	}
	return &c.up
}

// srcSide is the side h reads from.
func (c *conn) srcSide(h *half) uint32 {
	if h == &c.up {
		return sideClient
	}
	return sideBackend
}

// from returns the direction that reads side, and to the one that writes it.
func (c *conn) from(side uint32) *half {
	if side == sideClient {
		return &c.up
	}
	return &c.down
}

func (c *conn) to(side uint32) *half { return c.other(c.from(side)) }

// adapt updates the carrier choice after a fill of n bytes that left
// budget, and notes when a short buffered read proved src drained.
func (h *half) adapt(n, budget int) {
	if h.buf == nil {
		h.adaptSplice(n)
		return
	}
	if n == h.buf.Cap() {
		h.fulls = min(h.fulls+1, bulkAfter)
		h.bulk = h.fulls >= bulkAfter && !h.urgent
		return
	}
	h.fulls = 0
	if budget > 0 && !h.srcHup && !h.urgent {
		// read(2) returned less than asked: the receive queue is empty
		// now, and edge-triggered epoll reports any later arrival. (Not
		// so before an urgent mark, where recv stops short.)
		h.srcReady = false
	}
}

// adaptSplice updates the carrier choice after a splice of n bytes.
func (h *half) adaptSplice(n int) {
	if n >= bulkBelow {
		h.smalls = 0
		return
	}
	h.smalls = min(h.smalls+1, copyAfter)
	if h.smalls >= copyAfter {
		h.toCopy()
	}
}

// toCopy makes the direction copy from its next fill, with the runs
// towards splicing again counted from zero.
func (h *half) toCopy() { h.bulk, h.fulls, h.smalls = false, 0, 0 }

// relay pumps both directions and decides what happens next. A socket
// that failed does not end the connection at once: the direction reading
// from it goes on until the read returns the error, because Linux returns
// the bytes that arrived before a reset first, and they are delivered
// before the other peer gets the reset.
func (c *conn) relay() {
	for {
		upRes, upErr := c.pump(&c.up)
		downRes, downErr := c.pump(&c.down)
		c.flush()
		if !c.served && c.down.bytes > 0 {
			c.served = true
			if o := c.fe.observer; o != nil {
				o.Served(c.be)
			}
		}
		if upRes == pumpLocal || downRes == pumpLocal {
			c.loop.srv.log.Debug().Err(firstErr(upErr, downErr)).Uint64("connection_id", c.id).Msg("relay failed locally")
			c.end(CauseLocalError)
			return
		}
		failed := c.failed
		if upRes == pumpSrcFailed || downRes == pumpDstFailed {
			c.sideFailed(sideClient)
		}
		if downRes == pumpSrcFailed || upRes == pumpDstFailed {
			c.sideFailed(sideBackend)
		}
		if c.failed == failed {
			c.decide(upRes, downRes)
			return
		}
		// A new failure makes the direction reading the failed socket
		// readable: pump once more to collect what it still returns.
	}
}

// decide ends the connection, or queues it for more work, after a pass of
// both pumps that found no new failure.
func (c *conn) decide(upRes, downRes pumpResult) {
	switch {
	case c.failed == 1<<sideClient|1<<sideBackend:
		c.end(CauseNone)
		return
	case c.failed != 0:
		s := sideBackend
		if c.failed == 1<<sideClient {
			s = sideClient
		}
		if c.from(s).finished() {
			c.closing()
			return
		}
	case c.up.finished() && c.down.finished():
		c.end(Cause(CauseClientFIN + Cause(c.finFirst) - 1))
		return
	}
	if c.up.finished() || c.down.finished() {
		c.armIdle()
	}
	if (upRes == pumpMore || downRes == pumpMore) && !c.queued {
		c.queued = true
		c.loop.again = append(c.loop.again, c)
	}
}

// sideFailed records that side's socket failed: an error event, or a read
// or write that returned an error. The direction writing to it is dead and
// drops what it holds. The direction reading it goes on until the read
// returns the error (or the FIN that came before it).
func (c *conn) sideFailed(side uint32) {
	bit := uint8(1) << side
	if c.failed&bit != 0 {
		return
	}
	if c.failed == 0 {
		c.firstFailed = uint8(side)
	}
	c.failed |= bit
	from, to := c.from(side), c.to(side)
	to.dead = true
	c.dropCarrier(to)
	from.srcReady = true
}

// failureCause is the cause of a connection one of whose sockets failed,
// decided by the first to fail: a reset, unless that side's own stream had
// ended with a FIN first, in which case the reset cut nothing of it (a
// server that closed, then reset a client still writing to it) and the
// cause is that FIN.
func (c *conn) failureCause() Cause {
	side := uint32(c.firstFailed)
	from := c.from(side)
	switch {
	case from.eof && !from.srcErr && side == sideClient:
		return CauseClientFIN
	case from.eof && !from.srcErr:
		return CauseBackendFIN
	case side == sideClient:
		return CauseClientReset
	default:
		return CauseBackendReset
	}
}

// closing finishes a connection one of whose sockets failed once every
// byte for the survivor has been written to it: the survivor gets its
// reset (or its FIN) only when its send queue has been acknowledged, since
// a reset discards whatever the kernel still holds for the peer. The wait
// polls SIOCOUTQ at a short, growing interval and gives up at the
// inactivity limit, counted from the last byte acknowledged.
func (c *conn) closing() {
	c.state = stateClosing
	c.outq = -1
	c.lastActive = c.stampNow()
	c.lingerCheck()
}

// lingerMax is the longest pause between two looks at the send queue of a
// closing connection's survivor.
const lingerMax = 100 * tick

// lingerCheck ends a closing connection once the survivor has acknowledged
// everything, or re-arms itself.
func (c *conn) lingerCheck() {
	fd := c.cfd
	if c.failed == 1<<sideClient {
		fd = c.bfd
	}
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil || n == 0 {
		c.end(CauseNone)
		return
	}
	if c.outq < 0 || n < c.outq {
		c.lastActive = c.stampNow()
	}
	c.outq = n
	idle := c.since(c.lastActive)
	t, _ := c.timeout()
	if idle >= t {
		c.end(CauseNone)
		return
	}
	// 10 ms, then longer as the wait goes on, at most lingerMax.
	wait := min(max(tick, idle/4), lingerMax, t-idle)
	c.loop.wheel.Schedule(&c.timer, wait)
}

// resume continues a relay that ran out of budget in an earlier pass.
func (c *conn) resume() {
	c.queued = false
	switch c.state {
	case stateRelaying:
		c.relay()
	case stateClosed:
		c.loop.recycle(c)
	}
}

// flush adds the bytes delivered since the last flush to the backend's
// counters: one atomic add per direction per wake-up, not per syscall.
func (c *conn) flush() {
	if c.be == nil || (c.up.unflushed == 0 && c.down.unflushed == 0) {
		return
	}
	c.be.AddBytes(c.up.unflushed, c.down.unflushed)
	c.fe.bytesIn.Add(c.up.unflushed)
	c.fe.bytesOut.Add(c.down.unflushed)
	c.up.unflushed, c.down.unflushed = 0, 0
}

// takeCarrier gives h a pipe from the loop's cache when it is in bulk mode,
// else (or when the global pipe cap is reached, or this connection cannot
// splice) a buffer.
func (c *conn) takeCarrier(h *half) splice.Carrier {
	if h.carrier != nil {
		return h.carrier
	}
	if h.bulk && !c.noSplice && !h.urgent {
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
	h.ours, h.join = 0, false
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
