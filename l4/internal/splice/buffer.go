//go:build linux

package splice

import (
	"io"
)

// Buffer is a user-space Carrier between sockets: recvfrom(2) in, sendto(2)
// out. It is the fallback when the pipe cap is reached or an fd cannot
// splice. Get one from a Cache; it is not safe for concurrent use.
type Buffer struct {
	buf []byte
	// off and end delimit the held bytes, buf[off:end]; both are 0 when
	// the buffer is empty.
	off, end int
}

var _ Carrier = (*Buffer)(nil)

// Fill reads up to max bytes (at most the buffer size) from src; see
// Carrier.Fill.
func (b *Buffer) Fill(src int, max int) (int, error) {
	if b.end > 0 {
		return 0, ErrNotEmpty
	}
	if max < 1 {
		return 0, ErrInvalidMax
	}
	n, err := rawRead(src, b.buf[:min(max, len(b.buf))])
	if err != nil {
		return 0, err
	}
	b.end = n
	return n, nil
}

// Load puts p, bytes of the caller's own such as a protocol header, into
// the empty buffer: they are drained before anything read in after them.
// It fails with ErrNotEmpty on a buffer that holds bytes, and with
// ErrInvalidMax when p does not fit.
func (b *Buffer) Load(p []byte) error {
	switch {
	case b.end > 0:
		return ErrNotEmpty
	case len(p) > len(b.buf):
		return ErrInvalidMax
	}
	b.end = copy(b.buf, p) // a slice of Space: copied onto itself
	return nil
}

// Space returns the free room of an empty buffer, for bytes to be written
// in place and then given to Load: no array of their own to allocate.
func (b *Buffer) Space() []byte { return b.buf[b.end:] }

// FillAfter is Fill behind the bytes the buffer holds, in the room left
// after them (Room): how a header Loaded and the stream's first bytes
// leave in one write. Its results are Fill's; it fails with ErrInvalidMax
// when max < 1 or no room is left.
func (b *Buffer) FillAfter(src int, max int) (int, error) {
	max = min(max, len(b.buf)-b.end)
	if max < 1 {
		return 0, ErrInvalidMax
	}
	n, err := rawRead(src, b.buf[b.end:b.end+max])
	if err != nil {
		return 0, err
	}
	b.end += n
	return n, nil
}

// Room returns the most bytes FillAfter can read now.
func (b *Buffer) Room() int { return len(b.buf) - b.end }

// Drain writes the held bytes to dst; see Carrier.Drain. Like Pipe.Drain
// it writes until empty or EAGAIN.
func (b *Buffer) Drain(dst int) (int, error) {
	total := 0
	for b.off < b.end {
		n, err := rawWrite(dst, b.buf[b.off:b.end])
		switch {
		case err != nil:
			return total, err
		case n == 0:
			return total, io.ErrNoProgress
		}
		b.off += n
		total += n
	}
	b.off, b.end = 0, 0
	return total, nil
}

// Cap returns the most bytes one Fill can read.
func (b *Buffer) Cap() int { return len(b.buf) }

// Len returns the bytes held in the buffer.
func (b *Buffer) Len() int { return b.end - b.off }
