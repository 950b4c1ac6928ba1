package sock

import "golang.org/x/sys/unix"

// Syscall6 makes the raw system call trap and retries it while a signal
// interrupts it before it did anything (EINTR), as Go's internal/poll does
// around its calls: the runtime's own signals (preemption, profiling) may
// land on a loop's thread at any time. It returns the call's result, and a
// nil error or the bare errno. Every raw socket, pipe and splice call of
// the data plane goes through it, so no caller has an EINTR case of its
// own.
func Syscall6(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
		switch errno {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		default:
			return r, errno
		}
	}
}
