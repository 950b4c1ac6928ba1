package sock

import "golang.org/x/sys/unix"

// Syscall6 makes the raw system call trap and retries it while a signal
// interrupts it before it did anything (EINTR), as Go's internal/poll does
// around its calls: the runtime's own signals (preemption, profiling) may
// land on a loop's thread at any time. It returns the call's result, and a
// nil error or the bare errno. Every raw socket, pipe and splice call of
// the data plane retries this way, through Syscall6 or, where a call per
// relayed message counts (the relay's carriers), through a first try of
// their own and Retry6.
func Syscall6(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	r, _, errno := unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	if errno == 0 {
		return r, nil
	}
	return Retry6(errno, trap, a1, a2, a3, a4, a5, a6)
}

// Retry6 is Syscall6 after a first raw try of the same call failed with
// errno: it tries again while the error is EINTR, and returns the result
// or the bare errno. Kept out of line, so that the caller's successful
// first try costs no more than the raw call.
//
//go:noinline
func Retry6(errno unix.Errno, trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	for errno == unix.EINTR {
		var r uintptr
		r, _, errno = unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
		if errno == 0 {
			return r, nil
		}
	}
	return 0, errno
}
