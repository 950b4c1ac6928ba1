//go:build linux

package splice

import (
	"io"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// defaultPipeSize is the capacity Linux gives a new pipe: 16 pages.
var defaultPipeSize = 16 * os.Getpagesize()

// spliceFlags: MOVE asks the kernel to move pages rather than copy them
// where it can; NONBLOCK makes the pipe side of every call non-blocking
// (the sockets are non-blocking already).
const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

// Pipe is a kernel pipe used as a Carrier. Get one from a Cache; it is
// not safe for concurrent use.
type Pipe struct {
	rfd, wfd int
	size     int // capacity in bytes, as the kernel reports it
	held     int // bytes spliced in and not yet out
}

var _ Carrier = (*Pipe)(nil)

// newPipe creates a non-blocking pipe and asks for size bytes of
// capacity. The kernel may refuse (EPERM above fs.pipe-max-size, EPERM
// or EBUSY over fs.pipe-user-pages-*): the pipe then keeps its default
// size, which is still correct, only less efficient. A size below 1 or
// above math.MaxInt32 (fcntl takes an unsigned int and would truncate it)
// keeps the default without asking.
func newPipe(size int) (*Pipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	p := &Pipe{rfd: fds[0], wfd: fds[1]}
	if size > 0 && size <= math.MaxInt32 {
		_, _ = unix.FcntlInt(uintptr(p.wfd), unix.F_SETPIPE_SZ, size)
	}
	got, err := unix.FcntlInt(uintptr(p.wfd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		p.close()
		return nil, os.NewSyscallError("fcntl F_GETPIPE_SZ", err)
	}
	p.size = got
	return p, nil
}

// Fill splices up to max bytes (at most Cap) from src into the pipe; see
// Carrier.Fill. One splice call is made: a short count is not EOF, the
// caller drains and fills again.
func (p *Pipe) Fill(src int, max int) (int, error) {
	if p.held > 0 {
		return 0, ErrNotEmpty
	}
	if max < 1 {
		return 0, ErrInvalidMax
	}
	// The pipe is empty here, so EAGAIN can only mean src is empty.
	n, err := rawSplice(src, p.wfd, min(max, p.size), spliceFlags)
	switch err {
	case nil:
		p.held = int(n)
		return int(n), nil
	case unix.EINVAL:
		return 0, ErrSpliceUnsupported
	default:
		return 0, err
	}
}

// Drain splices the held bytes to dst; see Carrier.Drain. It keeps going
// until the pipe is empty or dst returns EAGAIN, so an edge-triggered
// loop is not left waiting for an EPOLLOUT that will not come.
func (p *Pipe) Drain(dst int) (int, error) {
	total := 0
	for p.held > 0 {
		n, err := rawSplice(p.rfd, dst, p.held, spliceFlags)
		switch {
		case err == unix.EINVAL:
			return total, ErrSpliceUnsupported
		case err != nil:
			return total, err
		case n == 0:
			// Only we write to the pipe and it holds bytes, so a zero
			// count would mean held is wrong; stop rather than spin.
			return total, io.ErrNoProgress
		}
		p.held -= int(n)
		total += int(n)
	}
	return total, nil
}

// Len returns the bytes held in the pipe.
func (p *Pipe) Len() int { return p.held }

// Cap returns the pipe's capacity in bytes: the configured pipe size, or
// the kernel default when the kernel refused it.
func (p *Pipe) Cap() int { return p.size }

func (p *Pipe) close() {
	unix.Close(p.rfd)
	unix.Close(p.wfd)
	p.rfd, p.wfd, p.held = -1, -1, 0
}
