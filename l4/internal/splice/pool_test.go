//go:build linux

package splice

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock/socktest"
)

func assertPipes(t *testing.T, p *Pool, inUse, open int) {
	t.Helper()
	if p.PipesInUse() != inUse || p.PipesOpen() != open {
		t.Fatalf("PipesInUse, PipesOpen = %d, %d; want %d, %d", p.PipesInUse(), p.PipesOpen(), inUse, open)
	}
}

func TestCapAcrossCaches(t *testing.T) {
	const maxPipes = 8
	pool := NewPool(maxPipes, 0, 0)
	caches := []*Cache{pool.NewCache(), pool.NewCache()}

	// Both loops grab as many pipes as they can at once: together they
	// get exactly the cap.
	held := make([][]*Pipe, len(caches))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range caches {
		wg.Go(func() {
			<-start
			for range maxPipes {
				if pp, ok := c.GetPipe(); ok {
					held[i] = append(held[i], pp)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := len(held[0]) + len(held[1]); got != maxPipes {
		t.Fatalf("pipes handed out = %d; want the cap %d", got, maxPipes)
	}
	assertPipes(t, pool, maxPipes, maxPipes)
	for i, c := range caches {
		for _, pp := range held[i] {
			c.PutPipe(pp)
		}
	}
	assertPipes(t, pool, 0, maxPipes) // idle in the caches

	// Churn: while both loops take and return pipes, the count of pipes
	// in use never passes the cap, nor the count in existence the cap
	// plus what the caches may keep idle.
	var over atomic.Int64
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if n := pool.PipesInUse(); n > maxPipes {
				over.Store(int64(n))
			}
			if n := pool.PipesOpen(); n > maxPipes+len(caches)*maxIdlePipes {
				over.Store(int64(n))
			}
		}
	})
	for _, c := range caches {
		wg.Go(func() {
			var mine []*Pipe
			for i := range 500 {
				if pp, ok := c.GetPipe(); ok {
					mine = append(mine, pp)
				}
				if len(mine) > 0 && (i%3 == 0 || len(mine) > maxPipes/2) {
					c.PutPipe(mine[0])
					mine = mine[1:]
				}
			}
			for _, pp := range mine {
				c.PutPipe(pp)
			}
		})
	}
	wg.Wait()
	close(done)
	sampler.Wait()
	if n := over.Load(); n != 0 {
		t.Fatalf("pipes reached %d; cap is %d in use, plus %d idle per cache", n, maxPipes, maxIdlePipes)
	}
	assertPipes(t, pool, 0, pool.PipesOpen())
	for _, c := range caches {
		c.Close()
	}
	assertPipes(t, pool, 0, 0)
}

// TestIdlePipesDoNotHoldTheCap: a loop that went quiet keeps its pipes
// idle for reuse, and another loop can still take the whole cap.
func TestIdlePipesDoNotHoldTheCap(t *testing.T) {
	const maxPipes = 4
	pool := NewPool(maxPipes, 0, 0)
	quiet, busy := pool.NewCache(), pool.NewCache()
	defer quiet.Close()
	defer busy.Close()
	var held []*Pipe
	for range maxPipes {
		pp, ok := quiet.GetPipe()
		if !ok {
			t.Fatal("GetPipe failed below the cap")
		}
		held = append(held, pp)
	}
	for _, pp := range held {
		quiet.PutPipe(pp)
	}
	assertPipes(t, pool, 0, maxPipes)
	held = held[:0]
	for range maxPipes {
		pp, ok := busy.GetPipe()
		if !ok {
			t.Fatalf("the busy cache got %d pipes while the quiet one held %d idle; want the cap, %d", len(held), maxPipes, maxPipes)
		}
		held = append(held, pp)
	}
	if _, ok := busy.GetPipe(); ok {
		t.Fatal("GetPipe succeeded past the cap")
	}
	// The quiet cache cannot take one of its own idle pipes past the cap.
	if _, ok := quiet.GetPipe(); ok {
		t.Fatal("an idle pipe was handed out past the cap")
	}
	assertPipes(t, pool, maxPipes, 2*maxPipes)
	for _, pp := range held {
		busy.PutPipe(pp)
	}
}

func TestPutPipeWithBytesIsClosed(t *testing.T) {
	pool := NewPool(2, 0, 0)
	cache := pool.NewCache()
	defer cache.Close()
	pp, _ := cache.GetPipe()
	client, src := socktest.TCPPair(t)
	unix.Write(client, []byte("leftover"))
	waitReady(t, src, unix.POLLIN)
	if n, err := pp.Fill(src, 100); n != 8 || err != nil {
		t.Fatalf("Fill = %d, %v; want 8, nil", n, err)
	}
	rfd := pp.rfd
	cache.PutPipe(pp)
	assertPipes(t, pool, 0, 0)
	if _, err := unix.FcntlInt(uintptr(rfd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("read end after PutPipe: fcntl = %v; want EBADF (closed)", err)
	}
	next, ok := cache.GetPipe()
	if !ok || next == pp || next.Len() != 0 {
		t.Fatalf("GetPipe = %p (len %d), %v; want a fresh empty pipe, not %p", next, next.Len(), ok, pp)
	}
	cache.PutPipe(next)
}

func TestIdleLimitAndFdBaseline(t *testing.T) {
	openFds(t) // let the first ReadDir open whatever it keeps open
	baseline := openFds(t)

	const n = maxIdlePipes + 8
	pool := NewPool(n, 0, 0)
	cache := pool.NewCache()
	pipes := make([]*Pipe, 0, n)
	for range n {
		pp, ok := cache.GetPipe()
		if !ok {
			t.Fatalf("GetPipe failed below the cap after %d", len(pipes))
		}
		pipes = append(pipes, pp)
	}
	if _, ok := cache.GetPipe(); ok {
		t.Fatal("GetPipe succeeded past the cap")
	}
	if got, want := openFds(t), baseline+2*n; got != want {
		t.Fatalf("open fds with %d pipes = %d; want %d", n, got, want)
	}
	for _, pp := range pipes {
		cache.PutPipe(pp)
	}
	assertPipes(t, pool, 0, maxIdlePipes)
	if got, want := openFds(t), baseline+2*maxIdlePipes; got != want {
		t.Fatalf("open fds with %d idle pipes = %d; want %d", maxIdlePipes, got, want)
	}

	cache.Close()
	cache.Close()
	assertPipes(t, pool, 0, 0)
	if got := openFds(t); got != baseline {
		t.Fatalf("open fds after Close = %d; want baseline %d", got, baseline)
	}
}

func TestClosedCache(t *testing.T) {
	pool := NewPool(4, 0, 0)
	cache := pool.NewCache()
	pp, ok := cache.GetPipe()
	if !ok {
		t.Fatal("GetPipe: no pipe")
	}
	cache.Close()
	if _, ok := cache.GetPipe(); ok {
		t.Fatal("GetPipe after Close succeeded")
	}
	// A connection still holding a pipe gives it back after the close.
	cache.PutPipe(pp)
	assertPipes(t, pool, 0, 0)
	if b := cache.GetBuffer(); b == nil || len(b.buf) != DefaultBufferSize {
		t.Fatal("GetBuffer after Close: want a default-size buffer")
	}
}

func TestNoPipesAllowed(t *testing.T) {
	for _, maxPipes := range []int{0, -1} {
		pool := NewPool(maxPipes, 0, 0)
		cache := pool.NewCache()
		if _, ok := cache.GetPipe(); ok {
			t.Errorf("NewPool(%d): GetPipe succeeded", maxPipes)
		}
		assertPipes(t, pool, 0, 0)
		cache.Close()
	}
}

func TestPipeSize(t *testing.T) {
	maxSize := readProcInt(t, "/proc/sys/fs/pipe-max-size")
	defaultSize := 16 * os.Getpagesize()
	tests := []struct {
		name string
		size int
		want int
	}{
		{"zero keeps default", 0, defaultSize},
		{"rounded up to a page", 100, os.Getpagesize()},
		{"at pipe-max-size", maxSize, maxSize},
		{"refused above pipe-max-size", 2 * maxSize, defaultSize},
		{"too large for fcntl", 1 << 32, defaultSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.size == 2*maxSize && os.Geteuid() == 0 {
				t.Skip("root may exceed fs.pipe-max-size")
			}
			cache := NewPool(1, tt.size, 0).NewCache()
			defer cache.Close()
			pp, ok := cache.GetPipe()
			if !ok {
				t.Fatal("GetPipe: no pipe")
			}
			defer cache.PutPipe(pp)
			if pp.Cap() != tt.want {
				t.Fatalf("Cap = %d; want %d", pp.Cap(), tt.want)
			}
		})
	}
}

func readProcInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return n
}

func TestBuffers(t *testing.T) {
	tests := []struct {
		bufSize, want int
	}{
		{0, DefaultBufferSize},
		{-5, DefaultBufferSize},
		{4096, 4096},
	}
	for _, tt := range tests {
		cache := NewPool(0, 0, tt.bufSize).NewCache()
		b := cache.GetBuffer()
		if len(b.buf) != tt.want || b.Len() != 0 {
			t.Errorf("NewPool(bufSize %d): buffer len %d, Len %d; want %d, 0", tt.bufSize, len(b.buf), b.Len(), tt.want)
		}
		b.end = 10 // as if a connection died holding bytes
		cache.PutBuffer(b)
		if b.Len() != 0 {
			t.Errorf("PutBuffer kept %d bytes; want them discarded", b.Len())
		}
	}
}
