//go:build linux

package netpoll

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// New fails with the system call that failed, and leaks no descriptor:
// with the open-file limit at the lowest free descriptor, epoll_create1
// fails; one above it, epoll_create1 succeeds, eventfd fails, and the
// epoll descriptor is closed again.
func TestNewFailsCleanly(t *testing.T) {
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
	for _, tc := range []struct {
		above   uint64 // the limit, above the lowest free descriptor
		syscall string
	}{{0, "epoll_create1"}, {1, "eventfd"}} {
		free := lowestFreeFD(t)
		lim := saved
		lim.Cur = uint64(free) + tc.above
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		p, err := New()
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
			t.Fatal(err)
		}
		if err == nil {
			p.Close()
			t.Fatalf("New with the limit at %d succeeded; want %s to fail", lim.Cur, tc.syscall)
		}
		var sysErr *os.SyscallError
		if !errors.As(err, &sysErr) || sysErr.Syscall != tc.syscall || !errors.Is(err, unix.EMFILE) {
			t.Errorf("New with the limit at %d = %v; want %s: EMFILE", lim.Cur, err, tc.syscall)
		}
		if after := lowestFreeFD(t); after != free {
			t.Errorf("after the failed New the lowest free descriptor is %d, was %d: a descriptor leaked", after, free)
		}
	}
}

// lowestFreeFD returns the number the next open would get.
func lowestFreeFD(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	return fd
}
