//go:build linux

package netpoll

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// swapFD puts fd in place of *slot for the length of f, so a Poller's own
// descriptor is one of the wrong kind, then puts the original back.
func swapFD(slot *int, fd int, f func()) {
	saved := *slot
	*slot = fd
	defer func() { *slot = saved }()
	f()
}

// TestWaitOnWrongDescriptor: epoll_wait on a descriptor that is not an
// epoll instance fails with EINVAL, blocking or not (the non-blocking
// call goes through the raw system call).
func TestWaitOnWrongDescriptor(t *testing.T) {
	p := newPoller(t)
	defer p.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	events := make([]unix.EpollEvent, 4)
	swapFD(&p.epfd, int(null.Fd()), func() {
		for _, timeout := range []int{0, 1} {
			n, err := p.Wait(events, timeout)
			var se *os.SyscallError
			if n != 0 || !errors.As(err, &se) || se.Syscall != "epoll_wait" || !errors.Is(err, unix.EINVAL) {
				t.Errorf("Wait(timeout %d) = %d, %v; want epoll_wait: EINVAL", timeout, n, err)
			}
		}
	})
}

// TestWakeFailureRearms: a Wake whose eventfd write fails reports it and
// leaves no wake-up pending, so the next Wake tries again rather than
// believing one is on its way.
func TestWakeFailureRearms(t *testing.T) {
	p := newPoller(t)
	defer p.Close()
	null, err := os.Open(os.DevNull) // read-only: writes fail with EBADF
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	swapFD(&p.efd, int(null.Fd()), func() {
		for range 2 {
			err := p.Wake()
			if err == nil || err.Error() != "eventfd_write: bad file descriptor" || p.wakePending.Load() != 0 {
				t.Fatalf("Wake = %v, pending %d; want eventfd_write: EBADF and none pending", err, p.wakePending.Load())
			}
		}
	})
	if err := p.Wake(); err != nil {
		t.Fatalf("Wake on the eventfd again = %v", err)
	}
}

// TestWakeBlockedByClose: a Wake that got past its first check while Close
// held the lock finds the poller closed once it gets the lock, and never
// writes to the closed eventfd.
func TestWakeBlockedByClose(t *testing.T) {
	p := newPoller(t)
	p.closeMu.Lock()
	done := make(chan error, 1)
	go func() { done <- p.Wake() }()
	testutil.WaitFor(t, 10*time.Second, "Wake to take the wake-up flag and wait for the lock",
		func() bool { return p.wakePending.Load() == 1 })
	p.closed.Store(true)
	p.closeMu.Unlock()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wake racing Close = %v, want ErrClosed", err)
	}
	p.closed.Store(false)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseReportsEBADF: a Poller whose descriptors were closed behind its
// back (a bug elsewhere closing a number it does not own) says so at
// Close, for the epoll instance and for the eventfd.
func TestCloseReportsEBADF(t *testing.T) {
	for _, which := range []string{"epoll", "eventfd"} {
		p := newPoller(t)
		fd := p.epfd
		if which == "eventfd" {
			fd = p.efd
		}
		unix.Close(fd)
		if err := p.Close(); err == nil || err.Error() != "close: bad file descriptor" {
			t.Errorf("Close with the %s descriptor gone = %v, want close: EBADF", which, err)
		}
	}
}
