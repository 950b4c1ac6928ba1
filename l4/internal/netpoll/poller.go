//go:build linux

package netpoll

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wakeData is the epoll data of the eventfd registration. Callers may not
// use it (Add and Modify reject it) so that Wait can tell the wake-up event
// from theirs without a lookup. It equals Token(math.MaxUint32, math.MaxUint32).
const wakeData = math.MaxUint64

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("netpoll: poller closed")

// ErrReservedData is returned by Add and Modify for the data value the
// poller keeps for its own wake-up event, Token(math.MaxUint32, math.MaxUint32).
var ErrReservedData = errors.New("netpoll: epoll data value is reserved for wake-ups")

// Poller is an epoll instance with a coalescing eventfd wake-up. The zero
// value is not usable; create one with New.
type Poller struct {
	epfd int
	efd  int

	// wakePending is 1 from the Wake whose CAS wrote the eventfd until
	// Wait has drained it; Wakes in between write nothing.
	wakePending atomic.Uint32

	// closeMu lets Wake write the eventfd without racing Close: Wake
	// holds it shared around the write, Close exclusively around closing
	// the fds, so Wake never writes to a closed (possibly reused) fd number.
	closeMu sync.RWMutex
	closed  atomic.Bool

	efdBuf [8]byte
}

// New creates an epoll instance (EPOLL_CLOEXEC) and an eventfd
// (EFD_NONBLOCK|EFD_CLOEXEC) registered level-triggered for wake-ups.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	p := &Poller{epfd: epfd, efd: efd}
	// Level-triggered on purpose: if a drain were ever missed, the next
	// Wait reports the eventfd again instead of losing the wake-up.
	if err := p.ctl(unix.EPOLL_CTL_ADD, efd, unix.EPOLLIN, wakeData); err != nil {
		unix.Close(efd)
		unix.Close(epfd)
		return nil, err
	}
	return p, nil
}

// Add registers fd for events (EPOLLIN, EPOLLOUT, EPOLLET, ...) with the
// data that Wait will report for it. It fails with ErrReservedData for the
// wake-up data value, and with the wrapped errno (EEXIST, EBADF, ...)
// when epoll_ctl fails.
func (p *Poller) Add(fd int, events uint32, data uint64) error {
	return p.userCtl(unix.EPOLL_CTL_ADD, fd, events, data)
}

// Modify replaces the events and data of a registered fd. Errors are those
// of Add, with ENOENT when fd is not registered.
func (p *Poller) Modify(fd int, events uint32, data uint64) error {
	return p.userCtl(unix.EPOLL_CTL_MOD, fd, events, data)
}

// Delete unregisters fd. epoll tracks the open file, not the number:
// closing fd unregisters it only when fd was the file's last descriptor.
// So a caller that just closes a socket it alone holds needs no Delete
// (the data plane's connections end that way), but one whose file lives
// on (a dup, a socket sent to another process at an upgrade) must Delete
// before it closes, or the loop goes on getting the file's events.
// ENOENT (not registered) and EBADF (already closed) are returned
// wrapped, not hidden; a caller tearing a connection down may ignore them
// with errors.Is.
func (p *Poller) Delete(fd int) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return os.NewSyscallError("epoll_ctl_del", err)
	}
	return nil
}

func (p *Poller) userCtl(op, fd int, events uint32, data uint64) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if data == wakeData {
		return ErrReservedData
	}
	return p.ctl(op, fd, events, data)
}

func (p *Poller) ctl(op, fd int, events uint32, data uint64) error {
	ev := unix.EpollEvent{Events: events}
	setEventData(&ev, data)
	if err := unix.EpollCtl(p.epfd, op, fd, &ev); err != nil {
		name := "epoll_ctl_add"
		if op == unix.EPOLL_CTL_MOD {
			name = "epoll_ctl_mod"
		}
		return os.NewSyscallError(name, err)
	}
	return nil
}

// Wait blocks until at least one registered fd is ready, Wake is called,
// or timeoutMsec elapses (-1 waits forever, 0 polls), and fills events with
// the ready fds. It returns the number of entries filled.
//
// The wake-up event is consumed here and never appears in events, so n may
// be 0 after a wake-up as after a timeout. Wait also returns (0, nil) when
// a signal interrupts epoll_wait (EINTR): retrying inside would stretch the
// caller's timeout, while the caller recomputes it from its timer wheel
// anyway. The order of events is the kernel's and carries no meaning.
func (p *Poller) Wait(events []unix.EpollEvent, timeoutMsec int) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	n, err := epollWait(p.epfd, events, timeoutMsec)
	if err != nil {
		if err == unix.EINTR {
			return 0, nil
		}
		return 0, os.NewSyscallError("epoll_wait", err)
	}
	for i := 0; i < n; i++ {
		if EventData(&events[i]) != wakeData {
			continue
		}
		p.drainWake()
		n--
		events[i] = events[n]
		break // the eventfd is registered once, so it is reported once
	}
	return n, nil
}

// drainWake empties the eventfd, then re-arms Wake. In this order a Wake
// that races the drain either finds the flag still set (its task was
// posted before the flag is cleared, so the loop's task-queue check that
// follows Wait sees it) or writes the eventfd again (the next Wait returns
// at once); no wake-up is lost.
func (p *Poller) drainWake() {
	// EAGAIN only: the eventfd is non-blocking and reported readable.
	// One read resets the counter, however many writes it summed.
	_, _ = unix.Read(p.efd, p.efdBuf[:])
	p.wakePending.Store(0)
}

// Wake makes the current or next Wait return. It is safe to call from any
// goroutine and cheap to call often: only the call that finds no wake-up
// pending writes the eventfd. It returns ErrClosed after Close.
func (p *Poller) Wake() error {
	if p.closed.Load() {
		return ErrClosed
	}
	if !p.wakePending.CompareAndSwap(0, 1) {
		return nil
	}
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed.Load() {
		return ErrClosed
	}
	var one [8]byte // eventfd adds this native-endian counter value
	binary.NativeEndian.PutUint64(one[:], 1)
	for {
		_, err := unix.Write(p.efd, one[:])
		switch err {
		case nil, unix.EAGAIN:
			// EAGAIN: the counter is near overflow, so a wake-up is
			// already pending; nothing more to do.
			return nil
		case unix.EINTR:
			continue
		default:
			// Re-arm so that a later Wake tries again rather than
			// believing a wake-up is pending.
			p.wakePending.Store(0)
			return os.NewSyscallError("eventfd_write", err)
		}
	}
}

// Close closes the epoll instance and the eventfd. The owner loop calls it
// after its last Wait; a second Close returns ErrClosed. Wake after Close
// returns ErrClosed, and a Wake racing Close never writes to the closed
// (possibly reused) fd. Registered fds are not closed: they are the
// caller's.
func (p *Poller) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed.Swap(true) {
		return ErrClosed
	}
	errE := unix.Close(p.efd)
	errP := unix.Close(p.epfd)
	if errP != nil {
		return os.NewSyscallError("close", errP)
	}
	if errE != nil {
		return os.NewSyscallError("close", errE)
	}
	return nil
}

// EventData returns the 64-bit data the kernel reported for ev. x/sys
// exposes the epoll_data union as two int32 fields, Fd and Pad, which are
// adjacent on every Linux layout (packed at offset 4 on amd64, at offset 8
// after padding elsewhere); reading 8 bytes from &ev.Fd gives the value in
// native byte order on all of them.
func EventData(ev *unix.EpollEvent) uint64 {
	return *(*uint64)(unsafe.Pointer(&ev.Fd))
}

func setEventData(ev *unix.EpollEvent, data uint64) {
	*(*uint64)(unsafe.Pointer(&ev.Fd)) = data
}

// epollWait is epoll_wait(2). A zero timeout cannot block, so it is made as
// a raw syscall: the Go scheduler need not prepare for a blocking call
// (entersyscall/exitsyscall), and the loop's P is never handed off for it.
// A call that may block goes through the scheduler as usual.
func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	if msec != 0 || len(events) == 0 {
		return unix.EpollWait(epfd, events, msec)
	}
	// epoll_pwait with no signal mask is epoll_wait, and exists on every
	// Linux architecture (arm64 has no plain epoll_wait).
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
