//go:build linux

package splice

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBufferSize is the Buffer size NewPool uses for a bufSize below 1.
const DefaultBufferSize = 64 << 10

// maxIdlePipes bounds the idle pipes one Cache keeps. Enough to absorb
// the churn of an event loop's burst of connections without a pipe2(2)
// each, few enough that idle pipes do not pin many fds.
const maxIdlePipes = 32

// Pipes granted smaller than the Buffer size carry less per splice call
// than one copy does: the Pool does not use them, and stops asking for
// pipes for a while, doubling the wait from smallPipeBackoff up to
// smallPipeBackoffMax while the kernel keeps granting small ones.
const (
	smallPipeBackoff    = time.Second
	smallPipeBackoffMax = time.Minute
)

// Pool is the process-wide budget of pipes, shared by every event loop,
// and the shared free list of Buffers. Loops do not use it directly but
// through their own Cache. Its methods are safe for concurrent use.
//
// The cap counts pipes in use, those carrying a connection's bytes: idle
// pipes kept in the loops' caches for reuse do not count, so a loop that
// went quiet with idle pipes never keeps another loop from splicing. They
// are bounded apart, maxIdlePipes per Cache.
type Pool struct {
	maxPipes int64
	pipeSize int
	bufSize  int

	// inUse counts pipes handed out by GetPipe and not yet put back; it
	// never exceeds maxPipes. open counts pipes in existence, in use or
	// idle in a cache.
	inUse atomic.Int64
	open  atomic.Int64

	// small counts pipes the kernel granted below pipeSize; retryAt is
	// when, after an unusable one, the Pool may ask for a pipe again
	// (unix ns), and backoff the wait after the next one.
	small   atomic.Uint64
	retryAt atomic.Int64
	backoff atomic.Int64
	// onSmall is told of the first pipe granted below pipeSize.
	onSmall     func(granted, requested int, usable bool)
	onSmallOnce sync.Once

	buffers sync.Pool
}

// NewPool returns a Pool allowing at most maxPipes pipes in use at once
// (below 1: none, every connection is buffered), each asked to hold
// pipeSize bytes (below 1: the kernel default, 64 KiB), and handing out
// Buffers of bufSize bytes (below 1: DefaultBufferSize).
func NewPool(maxPipes int, pipeSize int, bufSize int) *Pool {
	if bufSize < 1 {
		bufSize = DefaultBufferSize
	}
	p := &Pool{maxPipes: int64(max(maxPipes, 0)), pipeSize: pipeSize, bufSize: bufSize}
	p.buffers.New = func() any { return &Buffer{buf: make([]byte, bufSize)} }
	return p
}

// OnSmallPipe sets f to be called once, for the first pipe the kernel
// grants below the requested pipe size: an unprivileged process past
// fs.pipe-user-pages-soft gets 2-page pipes, and one asking above
// fs.pipe-max-size keeps the default size. usable says whether the pipe
// was still used (it holds at least a Buffer's worth) or refused, in which
// case the connections copy through Buffers. Call it before the first
// GetPipe; f must not block.
func (p *Pool) OnSmallPipe(f func(granted, requested int, usable bool)) { p.onSmall = f }

// PipesInUse returns the number of pipes held by connections: got from a
// Cache and not yet put back.
func (p *Pool) PipesInUse() int { return int(p.inUse.Load()) }

// PipesOpen returns the number of pipes in existence, in use or idle in a
// cache; each costs two fds.
func (p *Pool) PipesOpen() int { return int(p.open.Load()) }

// SmallPipes returns how many pipes the kernel granted below the requested
// size since the Pool was made.
func (p *Pool) SmallPipes() uint64 { return p.small.Load() }

// reserve counts one more pipe in use unless that would pass the cap. A
// CAS loop rather than add-then-undo, so a caller never fails because of
// another caller's transient overshoot.
func (p *Pool) reserve() bool {
	for {
		n := p.inUse.Load()
		if n >= p.maxPipes {
			return false
		}
		if p.inUse.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// newPipe makes a pipe for a Cache, or nil when the kernel refuses one or
// grants one too small to be worth splicing through.
func (p *Pool) newPipe() *Pipe {
	if at := p.retryAt.Load(); at != 0 && time.Now().UnixNano() < at {
		return nil
	}
	pp, err := newPipe(p.pipeSize)
	if err != nil {
		return nil
	}
	want := p.pipeSize
	if want < 1 {
		want = defaultPipeSize
	}
	if pp.size >= want {
		p.retryAt.Store(0)
		p.backoff.Store(0)
		return pp
	}
	p.small.Add(1)
	usable := pp.size >= p.bufSize
	if p.onSmall != nil {
		p.onSmallOnce.Do(func() { p.onSmall(pp.size, want, usable) })
	}
	if usable {
		return pp
	}
	pp.close()
	wait := time.Duration(p.backoff.Load())
	wait = min(max(2*wait, smallPipeBackoff), smallPipeBackoffMax)
	p.backoff.Store(int64(wait))
	p.retryAt.Store(time.Now().Add(wait).UnixNano())
	return nil
}

// NewCache returns a cache of idle pipes for one event loop.
func (p *Pool) NewCache() *Cache {
	return &Cache{pool: p, idle: make([]*Pipe, 0, maxIdlePipes)}
}

// Cache is one event loop's window on a Pool. It is not safe for
// concurrent use: only the owning loop calls it, which is why reusing an
// idle pipe needs neither a lock nor a syscall.
type Cache struct {
	pool   *Pool
	idle   []*Pipe // empty pipes, most recently used last
	closed bool
}

// GetPipe returns an empty pipe, reusing an idle one when it can. It
// returns false when the Pool's cap is reached, when the pipe cannot be
// created (EMFILE, ENFILE), when the kernel grants pipes too small to be
// worth it (see OnSmallPipe), or after Close; the caller then carries the
// connection's bytes in a Buffer instead.
func (c *Cache) GetPipe() (*Pipe, bool) {
	if c.closed || !c.pool.reserve() {
		return nil, false
	}
	if n := len(c.idle); n > 0 {
		pp := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		return pp, true
	}
	pp := c.pool.newPipe()
	if pp == nil {
		c.pool.inUse.Add(-1)
		return nil, false
	}
	c.pool.open.Add(1)
	return pp, true
}

// PutPipe gives back a pipe got from GetPipe; each pipe is put back
// exactly once and not touched afterwards. Callers put back pipes once
// drained: a pipe still holding bytes (a connection torn down mid-flight)
// is closed rather than kept, so its bytes cannot leak into another
// connection. Pipes beyond the idle limit, and every pipe once the cache
// is closed, are closed too so that they do not pin fds.
func (c *Cache) PutPipe(pp *Pipe) {
	c.pool.inUse.Add(-1)
	if pp.held > 0 || c.closed || len(c.idle) == cap(c.idle) {
		pp.close()
		c.pool.open.Add(-1)
		return
	}
	c.idle = append(c.idle, pp)
}

// GetBuffer returns an empty Buffer from the Pool's shared free list.
func (c *Cache) GetBuffer() *Buffer {
	return c.pool.buffers.Get().(*Buffer)
}

// PutBuffer gives back a Buffer got from GetBuffer; each is put back once
// and not touched afterwards. Bytes still held are discarded.
func (c *Cache) PutBuffer(b *Buffer) {
	b.off, b.end = 0, 0
	c.pool.buffers.Put(b)
}

// Close closes the idle pipes and makes the cache hand out no more pipes;
// pipes still in use may be put back afterwards and are then closed. The
// owning loop calls it when it stops. Close is idempotent.
func (c *Cache) Close() {
	c.closed = true
	for i, pp := range c.idle {
		pp.close()
		c.pool.open.Add(-1)
		c.idle[i] = nil
	}
	c.idle = c.idle[:0]
}
