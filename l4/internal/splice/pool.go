//go:build linux

package splice

import (
	"sync"
	"sync/atomic"
)

// DefaultBufferSize is the Buffer size NewPool uses for a bufSize below 1.
const DefaultBufferSize = 64 << 10

// maxIdlePipes bounds the idle pipes one Cache keeps. Enough to absorb
// the churn of an event loop's burst of connections without a pipe2(2)
// each, few enough that idle pipes do not pin many fds. Idle pipes still
// count against the Pool's cap.
const maxIdlePipes = 32

// Pool is the process-wide budget of pipes, shared by every event loop,
// and the shared free list of Buffers. Loops do not use it directly but
// through their own Cache. Its methods are safe for concurrent use.
type Pool struct {
	maxPipes int64
	pipeSize int

	// open counts pipes in existence (held by connections or idle in a
	// cache); it never exceeds maxPipes. inUse counts those handed out
	// by GetPipe and not yet put back.
	open  atomic.Int64
	inUse atomic.Int64

	buffers sync.Pool
}

// NewPool returns a Pool allowing at most maxPipes pipes at once (below 1:
// none, every connection is buffered), each asked to hold pipeSize bytes
// (below 1: the kernel default, 64 KiB), and handing out Buffers of
// bufSize bytes (below 1: DefaultBufferSize).
func NewPool(maxPipes int, pipeSize int, bufSize int) *Pool {
	if bufSize < 1 {
		bufSize = DefaultBufferSize
	}
	p := &Pool{maxPipes: int64(max(maxPipes, 0)), pipeSize: pipeSize}
	p.buffers.New = func() any { return &Buffer{buf: make([]byte, bufSize)} }
	return p
}

// PipesInUse returns the number of pipes held by connections: got from a
// Cache and not yet put back.
func (p *Pool) PipesInUse() int { return int(p.inUse.Load()) }

// PipesOpen returns the number of pipes in existence, in use or idle in a
// cache; each costs two fds.
func (p *Pool) PipesOpen() int { return int(p.open.Load()) }

// reserve counts one more pipe in existence unless that would pass the
// cap. A CAS loop rather than add-then-undo, so a caller never fails
// because of another caller's transient overshoot.
func (p *Pool) reserve() bool {
	for {
		n := p.open.Load()
		if n >= p.maxPipes {
			return false
		}
		if p.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
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
// created (EMFILE, ENFILE) or after Close; the caller then carries the
// connection's bytes in a Buffer instead.
func (c *Cache) GetPipe() (*Pipe, bool) {
	if c.closed {
		return nil, false
	}
	if n := len(c.idle); n > 0 {
		pp := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.pool.inUse.Add(1)
		return pp, true
	}
	if !c.pool.reserve() {
		return nil, false
	}
	pp, err := newPipe(c.pool.pipeSize)
	if err != nil {
		c.pool.open.Add(-1)
		return nil, false
	}
	c.pool.inUse.Add(1)
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
