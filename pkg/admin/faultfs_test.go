package admin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// File systems that fail, for the error paths of the audit log and the
// users file: a tmpfs of a few pages that fills up, and a directory made
// read-only under the files already open in it. Both need the privilege
// to mount; without it the test skips, saying so.

// mountTmpfs mounts a tmpfs with the given options ("size=64k") on a new
// directory under the test's temporary directory, and unmounts it when the
// test ends.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		skipUnlessMountFails(t, err, "mount -t tmpfs -o "+opts)
	}
	// Detached, so that a file a failing test left open cannot keep it.
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// readOnly makes dir read-only by bind-mounting it read-only on itself:
// paths under it refuse every change with EROFS, while the files already
// open for writing in it stay writable through their descriptors, as when
// an operator or a failing disk remounts a file system read-only. The
// returned function makes it writable again (the test's end does too).
func readOnly(t *testing.T, dir string) (writable func()) {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		skipUnlessMountFails(t, err, "mount --bind")
	}
	undone := false
	writable = func() {
		if !undone {
			undone = true
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmounting the read-only bind mount of %s: %v", dir, err)
			}
		}
	}
	t.Cleanup(writable)
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting %s read-only: %v", dir, err)
	}
	return writable
}

// skipUnlessMountFails skips the test when this process may not mount
// (not root, or a container without CAP_SYS_ADMIN), and fails it on any
// other error.
func skipUnlessMountFails(t *testing.T, err error, what string) {
	t.Helper()
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		t.Skipf("%s: %v: this test needs root (CAP_SYS_ADMIN) to mount a file system that fails", what, err)
	}
	t.Fatal(fmt.Errorf("%s: %w", what, err))
}

// fill writes to a new file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for i := 0; ; i++ {
		_, err := f.Write(page)
		if errors.Is(err, unix.ENOSPC) {
			return path
		}
		if err != nil || i > 1<<14 {
			t.Fatalf("filling %s: %v after %d pages", dir, err, i)
		}
	}
}
