//go:build linux

package splice

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
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
		var err error
		if r, err = sock.Retry6(errno, unix.SYS_SPLICE, uintptr(rfd), 0, uintptr(wfd), 0, uintptr(n), uintptr(flags)); err != nil {
			return 0, err
		}
	}
	return int(r), nil
}

// rawRead reads from the socket fd with recvfrom(2) and no address, not
// read(2): read goes through the VFS layer first (the file-position lock,
// fsnotify and LSM file hooks), which a socket gains nothing from.
func rawRead(fd int, p []byte) (int, error) {
	buf := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	r, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), buf, uintptr(len(p)), 0, 0, 0)
	if errno != 0 {
		var err error
		if r, err = sock.Retry6(errno, unix.SYS_RECVFROM, uintptr(fd), buf, uintptr(len(p)), 0, 0, 0); err != nil {
			return 0, err
		}
	}
	return int(r), nil
}

// rawWrite writes to the socket fd with sendto(2) and MSG_NOSIGNAL, for
// the reason rawRead uses recvfrom; a peer that has gone away yields EPIPE
// without a SIGPIPE for the runtime to field.
func rawWrite(fd int, p []byte) (int, error) {
	buf := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	r, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), buf, uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		var err error
		if r, err = sock.Retry6(errno, unix.SYS_SENDTO, uintptr(fd), buf, uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0); err != nil {
			return 0, err
		}
	}
	return int(r), nil
}
