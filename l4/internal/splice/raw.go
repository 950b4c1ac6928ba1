//go:build linux

package splice

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The carriers' syscalls cannot block: every socket is non-blocking and
// every pipe call passes SPLICE_F_NONBLOCK. They are made as raw syscalls,
// which skips the Go scheduler's preparation for a call that might block
// (entersyscall/exitsyscall, and sysmon handing the event loop's P to
// another thread). On a request/response load that is four calls per
// request, so the saving shows in proxy CPU time.

func rawSplice(rfd, wfd, n, flags int) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(rfd), 0, uintptr(wfd), 0, uintptr(n), uintptr(flags))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func rawRead(fd int, p []byte) (int, error) {
	r, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	r, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
