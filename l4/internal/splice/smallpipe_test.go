//go:build linux

package splice

import (
	"os"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

const smallPipesChild = "SPLICE_TEST_SMALL_PIPES_CHILD"

// TestSmallPipesRefused: an unprivileged process past
// fs.pipe-user-pages-soft gets 2-page pipes and F_SETPIPE_SZ fails with
// EPERM. The Pool sees the size actually granted, counts the pipe, says
// so once, does not use it (copying beats splicing a page at a time) and
// asks for no pipe again until its back-off passes, so the connections
// copy instead of flipping between a pipe and a buffer. As root, the test
// runs itself again as user nobody.
func TestSmallPipesRefused(t *testing.T) {
	if os.Getenv(smallPipesChild) == "" && os.Geteuid() == 0 {
		testutil.RunAsNobody(t, "TestSmallPipesRefused", smallPipesChild+"=1")
		return
	}
	soft := readProcInt(t, "/proc/sys/fs/pipe-user-pages-soft")
	if soft == 0 {
		t.Skip("fs.pipe-user-pages-soft is 0 (no limit): pipes never shrink here")
	}
	maxSize := readProcInt(t, "/proc/sys/fs/pipe-max-size")
	// Use up this user's soft allowance with pipes of the largest size an
	// unprivileged process may ask for.
	var hogs []*Pipe
	defer func() {
		for _, pp := range hogs {
			pp.close()
		}
	}()
	for len(hogs) < 4000 {
		pp, err := newPipe(maxSize)
		if err != nil {
			t.Fatalf("pipe %d: %v", len(hogs), err)
		}
		hogs = append(hogs, pp)
		if pp.size < defaultPipeSize {
			break
		}
	}
	if last := hogs[len(hogs)-1]; last.size >= defaultPipeSize {
		t.Skipf("%d pipes and still full size: the soft limit (%d pages) does not bite", len(hogs), soft)
	}
	t.Logf("after %d pipes the kernel grants %d-byte pipes", len(hogs), hogs[len(hogs)-1].size)

	pool := NewPool(8, maxSize, DefaultBufferSize)
	type report struct {
		granted, requested int
		usable             bool
	}
	var reports []report
	pool.OnSmallPipe(func(g, r int, usable bool) { reports = append(reports, report{g, r, usable}) })
	cache := pool.NewCache()
	defer cache.Close()
	if _, ok := cache.GetPipe(); ok {
		t.Fatal("GetPipe handed out a pipe smaller than a buffer")
	}
	if pool.SmallPipes() != 1 || len(reports) != 1 || reports[0].usable || reports[0].requested != maxSize ||
		reports[0].granted >= DefaultBufferSize {
		t.Fatalf("small pipes %d, reports %+v; want 1 and one report of an unusable pipe", pool.SmallPipes(), reports)
	}
	assertPipes(t, pool, 0, 0)
	// Within the back-off no pipe is even asked for.
	for range 100 {
		if _, ok := cache.GetPipe(); ok {
			t.Fatal("GetPipe handed out a pipe during the back-off")
		}
	}
	if pool.SmallPipes() != 1 {
		t.Fatalf("small pipes %d after 100 GetPipe calls in the back-off; want still 1 (no pipe asked for)", pool.SmallPipes())
	}
	// After it, the Pool asks again; the report is not repeated, and the
	// next back-off is longer.
	pool.retryAt.Store(time.Now().Add(-time.Second).UnixNano())
	if _, ok := cache.GetPipe(); ok || pool.SmallPipes() != 2 || len(reports) != 1 {
		t.Fatalf("second try: ok %v, small pipes %d, reports %d; want false, 2, 1", ok, pool.SmallPipes(), len(reports))
	}
	if b := time.Duration(pool.backoff.Load()); b != 2*smallPipeBackoff {
		t.Errorf("second back-off %v, want %v", b, 2*smallPipeBackoff)
	}
	// Once the user's pipes are gone, full-size pipes come back.
	for _, pp := range hogs {
		pp.close()
	}
	hogs = nil
	pool.retryAt.Store(time.Now().Add(-time.Second).UnixNano())
	pp, ok := cache.GetPipe()
	if !ok || pp.Cap() != maxSize {
		t.Fatalf("after the user's pipes closed: ok %v; want a %d-byte pipe", ok, maxSize)
	}
	cache.PutPipe(pp)
	if pool.backoff.Load() != 0 {
		t.Error("the back-off was not reset by a full-size pipe")
	}
}
