package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// load drives a frontend the way the acceptance tests ask: new
// short connections at a fixed rate, plus long streams that echo
// checksummed chunks, counting every kind of failure.
type load struct {
	front string
	stop  chan struct{}
	wg    sync.WaitGroup

	short, streams                     atomic.Int64 // completed short connections, streams
	refused, resets, corrupt, otherErr atomic.Int64
	streamBytes                        atomic.Int64

	mu   sync.Mutex
	errs []string
}

const (
	streamChunk = 4 << 10
	streamPause = 20 * time.Millisecond
)

// startLoad starts rate short connections per second and n streams on
// front until finish; at most maxShort short connections in all.
func startLoad(t testing.TB, front string, rate, n int, maxShort int) *load {
	l := &load{front: front, stop: make(chan struct{})}
	for i := 0; i < n; i++ {
		l.wg.Add(1)
		go l.stream(i)
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		// A ticker drops the ticks its reader misses: on a loaded machine
		// that alone cut the rate by half. Each tick starts every
		// connection due by now instead.
		start := time.Now()
		for i := 0; i < maxShort; {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			due := min(maxShort, int(time.Since(start)*time.Duration(rate)/time.Second))
			for ; i < due; i++ {
				l.wg.Add(1)
				go l.shortConn(i)
			}
		}
	}()
	t.Cleanup(l.finish)
	return l
}

// finish stops the load and waits for every connection to end.
func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// failed counts err under its kind.
func (l *load) failed(what string, err error) {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		l.refused.Add(1)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		l.resets.Add(1)
	case err == errCorrupt:
		l.corrupt.Add(1)
	default:
		l.otherErr.Add(1)
	}
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, fmt.Sprintf("%s: %v", what, err))
	}
	l.mu.Unlock()
}

var errCorrupt = errors.New("echoed bytes differ from those sent")

func (l *load) shortConn(i int) {
	defer l.wg.Done()
	c, err := net.DialTimeout("tcp", l.front, 5*time.Second)
	if err != nil {
		l.failed("connect", err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte(fmt.Sprintf("short connection %08d payload", i))
	if _, err := c.Write(msg); err != nil {
		l.failed("short write", err)
		return
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	switch {
	case err != nil:
		l.failed("short read", err)
	case !bytes.Equal(got, msg):
		l.failed("short echo", errCorrupt)
	default:
		l.short.Add(1)
	}
}

// stream echoes random chunks until stop, then closes cleanly; every byte
// must come back as sent.
func (l *load) stream(i int) {
	defer l.wg.Done()
	c, err := net.DialTimeout("tcp", l.front, 5*time.Second)
	if err != nil {
		l.failed("stream connect", err)
		return
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	out, in := make([]byte, streamChunk), make([]byte, streamChunk)
	for {
		select {
		case <-l.stop:
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := c.Read(in); err != io.EOF {
				l.failed("stream end", fmt.Errorf("%d bytes, %v, want EOF", n, err))
				return
			}
			l.streams.Add(1)
			return
		default:
		}
		for j := range out {
			out[j] = byte(rng.Uint32())
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(out); err != nil {
			l.failed("stream write", err)
			return
		}
		if _, err := io.ReadFull(c, in); err != nil {
			l.failed("stream read", err)
			return
		}
		if !bytes.Equal(in, out) {
			l.failed("stream echo", errCorrupt)
			return
		}
		l.streamBytes.Add(streamChunk)
		time.Sleep(streamPause)
	}
}

// check fails t unless the load saw no failure at all.
func (l *load) check(t testing.TB, wantStreams int) {
	t.Helper()
	l.finish()
	t.Logf("load: %d short connections, %d streams (%d MiB echoed); refused %d, reset %d, corrupt %d, other %d",
		l.short.Load(), l.streams.Load(), l.streamBytes.Load()>>20,
		l.refused.Load(), l.resets.Load(), l.corrupt.Load(), l.otherErr.Load())
	if l.refused.Load()+l.resets.Load()+l.corrupt.Load()+l.otherErr.Load() != 0 {
		t.Errorf("failures: %v", l.errs)
	}
	if int(l.streams.Load()) != wantStreams {
		t.Errorf("%d streams ended cleanly, want %d", l.streams.Load(), wantStreams)
	}
}
