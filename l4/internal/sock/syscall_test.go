package sock

import (
	"errors"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestSyscall6RetriesEINTR interrupts a blocking recvfrom with a signal.
// A socket with a receive timeout is never restarted by the kernel after a
// signal handler ran (signal(7)), SA_RESTART or not: the raw call returns
// EINTR, where Syscall6 (and so Retry6) calls again and returns the bytes
// sent after the signal.
func TestSyscall6RetriesEINTR(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	for _, tc := range []struct {
		name string
		call func(fd int, p []byte) (uintptr, error)
	}{
		{"raw", func(fd int, p []byte) (uintptr, error) {
			r, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
			if errno != 0 {
				return r, errno
			}
			return r, nil
		}},
		{"Syscall6", func(fd int, p []byte) (uintptr, error) {
			return Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fds[0])
			defer unix.Close(fds[1])
			tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
			if err := unix.SetsockoptTimeval(fds[0], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				t.Fatal(err)
			}
			type result struct {
				n   uintptr
				err error
			}
			tid, done := make(chan int, 1), make(chan result, 1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				tid <- unix.Gettid()
				p := make([]byte, 16)
				n, err := tc.call(fds[0], p)
				done <- result{n, err}
			}()
			id := <-tid
			testutil.WaitFor(t, 5*time.Second, "the reader blocked in recvfrom", func() bool {
				return inSyscall(id, unix.SYS_RECVFROM)
			})
			if err := unix.Tgkill(os.Getpid(), id, unix.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			select {
			case <-sigs:
			case <-time.After(5 * time.Second):
				t.Fatal("the signal was not delivered")
			}
			if tc.name == "raw" {
				if r := <-done; !errors.Is(r.err, unix.EINTR) {
					t.Fatalf("raw recvfrom after a signal: %d, %v; want EINTR (the test's premise)", r.n, r.err)
				}
				return
			}
			if _, err := unix.Write(fds[1], []byte("after")); err != nil {
				t.Fatal(err)
			}
			if r := <-done; r.err != nil || r.n != 5 {
				t.Fatalf("Syscall6 recvfrom after a signal: %d bytes, %v; want the 5 bytes sent after it", r.n, r.err)
			}
		})
	}
}

// inSyscall reports whether thread tid of this process is blocked in
// system call nr (/proc/self/task/TID/syscall starts with its number).
func inSyscall(tid int, nr uintptr) bool {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/syscall")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 0 && f[0] == strconv.FormatUint(uint64(nr), 10)
}
