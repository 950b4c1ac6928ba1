package testutil

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// LowestFreeFD returns the lowest descriptor number not in use: the one
// the next open gets. A test compares it before and after a call to show
// that the call leaked no descriptor.
func LowestFreeFD(t testing.TB) int {
	t.Helper()
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	return fd
}

// AtFileLimit runs f with the open-file limit (RLIMIT_NOFILE) lowered so
// that room more descriptors can be opened and the next fails with EMFILE,
// and restores the limit as soon as f returns (and at the test's end, if
// f fails it). It returns the lowest free descriptor before f ran.
func AtFileLimit(t testing.TB, room int, f func()) (lowestFree int) {
	t.Helper()
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	}
	t.Cleanup(restore)
	free := LowestFreeFD(t)
	lim := saved
	lim.Cur = uint64(free + room)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer restore()
	f()
	return free
}
