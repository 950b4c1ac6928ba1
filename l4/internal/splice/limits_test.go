//go:build linux

package splice

import (
	"math"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUnaskableSizeGivesSmallPipes: a pipe size the kernel cannot be asked
// for (above math.MaxInt32, which F_SETPIPE_SZ would truncate) leaves
// every pipe at the default size, below the size wanted. The Pool counts
// each such pipe and reports the first, once; it uses them while they hold
// a Buffer's worth, and otherwise asks for none until its back-off passes.
func TestUnaskableSizeGivesSmallPipes(t *testing.T) {
	const huge = math.MaxInt
	if huge <= math.MaxInt32 {
		t.Skip("a 32-bit int cannot hold a size above math.MaxInt32")
	}
	type report struct {
		granted, requested int
		usable             bool
	}

	usable := NewPool(4, huge, DefaultBufferSize)
	var reports []report
	usable.OnSmallPipe(func(g, r int, u bool) { reports = append(reports, report{g, r, u}) })
	c := usable.NewCache()
	defer c.Close()
	a, okA := c.GetPipe()
	b, okB := c.GetPipe()
	if !okA || !okB || a.Cap() != defaultPipeSize || b.Cap() != defaultPipeSize {
		t.Fatalf("GetPipe = %v, %v; want two pipes of the default %d bytes", okA, okB, defaultPipeSize)
	}
	if usable.SmallPipes() != 2 || len(reports) != 1 || reports[0] != (report{defaultPipeSize, huge, true}) {
		t.Fatalf("small pipes %d, reports %+v; want 2 and one report of a usable pipe", usable.SmallPipes(), reports)
	}
	c.PutPipe(a)
	c.PutPipe(b)
	assertPipes(t, usable, 0, 2)

	refused := NewPool(4, huge, 2*defaultPipeSize)
	reports = nil
	refused.OnSmallPipe(func(g, r int, u bool) { reports = append(reports, report{g, r, u}) })
	c = refused.NewCache()
	defer c.Close()
	for range 3 {
		if _, ok := c.GetPipe(); ok {
			t.Fatal("GetPipe handed out a pipe smaller than a Buffer")
		}
	}
	if refused.SmallPipes() != 1 || len(reports) != 1 || reports[0] != (report{defaultPipeSize, huge, false}) {
		t.Fatalf("small pipes %d, reports %+v; want 1 (none asked during the back-off) and one report of an unusable pipe",
			refused.SmallPipes(), reports)
	}
	assertPipes(t, refused, 0, 0)
	if b := time.Duration(refused.backoff.Load()); b != smallPipeBackoff {
		t.Errorf("back-off %v, want %v", b, smallPipeBackoff)
	}
}

// TestGetPipeAtFileLimit: at the open-file limit a pipe cannot be made:
// GetPipe says so (the connection copies through a Buffer instead),
// counts nothing in use, and hands out pipes again once descriptors are
// free.
func TestGetPipeAtFileLimit(t *testing.T) {
	pool := NewPool(4, 0, 0)
	c := pool.NewCache()
	defer c.Close()
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	lim := saved
	lim.Cur = uint64(fd) // the lowest free descriptor: none may be opened
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	_, ok := c.GetPipe()
	_, perr := newPipe(0)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatal("GetPipe handed out a pipe at the open-file limit")
	}
	if perr == nil || perr.Error() != "pipe2: too many open files" {
		t.Errorf("newPipe at the limit = %v, want pipe2: EMFILE", perr)
	}
	assertPipes(t, pool, 0, 0)
	pp, ok := c.GetPipe()
	if !ok {
		t.Fatal("no pipe once descriptors are free")
	}
	c.PutPipe(pp)
	assertPipes(t, pool, 0, 1)
}
