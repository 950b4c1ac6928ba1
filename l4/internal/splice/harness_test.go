//go:build linux

package splice

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/sock/socktest"
)

// fixture is a carrier between two loopback TCP connections, the shape
// of one direction of a relay:
//
//	client → src ⇒ carrier ⇒ dst → server
//
// The test plays client and server; the carrier is driven as the event
// loop would drive it.
type fixture struct {
	carrier                  Carrier
	client, src, dst, server int
}

// carrierKinds lets one test body run against both carriers.
var carrierKinds = []string{"pipe", "buffer"}

// newFixture builds a fixture around a carrier of kind with the given
// pipe and buffer size (below 1: the defaults). Cleanup gives the carrier
// back and closes its cache and the sockets.
func newFixture(tb testing.TB, kind string, size int) *fixture {
	tb.Helper()
	cache := NewPool(1, size, size).NewCache()
	tb.Cleanup(cache.Close)
	f := &fixture{}
	switch kind {
	case "pipe":
		pp, ok := cache.GetPipe()
		if !ok {
			tb.Fatal("GetPipe: no pipe")
		}
		tb.Cleanup(func() { cache.PutPipe(pp) })
		f.carrier = pp
	case "buffer":
		b := cache.GetBuffer()
		tb.Cleanup(func() { cache.PutBuffer(b) })
		f.carrier = b
	default:
		tb.Fatalf("unknown carrier kind %q", kind)
	}
	f.client, f.src = socktest.TCPPair(tb)
	f.dst, f.server = socktest.TCPPair(tb)
	return f
}

// waitReady fails the test unless fd reports one of events in time.
func waitReady(tb testing.TB, fd int, events int16) {
	tb.Helper()
	if _, err := socktest.WaitReady(fd, events); err != nil {
		tb.Fatal(err)
	}
}

// writeAll writes chunk to fd repeat times, then half-closes fd so the
// reader sees EOF.
func writeAll(fd int, chunk []byte, repeat int) error {
	for range repeat {
		for off := 0; off < len(chunk); {
			n, err := unix.Write(fd, chunk[off:])
			if err != nil && err != unix.EAGAIN {
				return fmt.Errorf("write: %w", err)
			}
			if err == unix.EAGAIN {
				if _, err := socktest.WaitReady(fd, unix.POLLOUT); err != nil {
					return err
				}
				continue
			}
			off += n
		}
	}
	return sock.ShutdownWrite(fd)
}

// readAll reads fd until EOF, handing each chunk to sink.
func readAll(fd int, sink func([]byte)) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil && err != unix.EAGAIN {
			return fmt.Errorf("read: %w", err)
		}
		if err == unix.EAGAIN {
			if _, err := socktest.WaitReady(fd, unix.POLLIN); err != nil {
				return err
			}
			continue
		}
		if n == 0 {
			return nil
		}
		sink(buf[:n])
	}
}

// relay moves bytes from f.src to f.dst through the carrier, max bytes a
// Fill, until EOF on src, then half-closes dst; it returns the bytes moved.
func (f *fixture) relay(max int) (int64, error) {
	var moved int64
	for {
		if f.carrier.Len() == 0 {
			n, err := f.carrier.Fill(f.src, max)
			switch {
			case errors.Is(err, unix.EAGAIN):
				if _, err := socktest.WaitReady(f.src, unix.POLLIN); err != nil {
					return moved, err
				}
				continue
			case err != nil:
				return moved, fmt.Errorf("fill: %w", err)
			case n == 0:
				return moved, sock.ShutdownWrite(f.dst)
			}
		}
		n, err := f.carrier.Drain(f.dst)
		moved += int64(n)
		switch {
		case errors.Is(err, unix.EAGAIN):
			if _, err := socktest.WaitReady(f.dst, unix.POLLOUT); err != nil {
				return moved, err
			}
		case err != nil:
			return moved, fmt.Errorf("drain: %w", err)
		}
	}
}

// openFds counts this process's open fds.
func openFds(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(entries)
}
