//go:build linux

package splice

import (
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock/socktest"
)

func TestTransfer8MiB(t *testing.T) {
	data := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	want := sha256.Sum256(data)

	for _, kind := range carrierKinds {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, kind, 0)
			writeErr := make(chan error, 1)
			go func() { writeErr <- writeAll(f.client, data, 1) }()
			type result struct {
				n   int
				sum [32]byte
				err error
			}
			got := make(chan result, 1)
			go func() {
				h := sha256.New()
				var r result
				r.err = readAll(f.server, func(b []byte) { r.n += len(b); h.Write(b) })
				h.Sum(r.sum[:0])
				got <- r
			}()

			moved, err := f.relay(1 << 20)
			if err != nil {
				t.Fatalf("relay: %v", err)
			}
			if err := <-writeErr; err != nil {
				t.Fatalf("writer: %v", err)
			}
			r := <-got
			if r.err != nil {
				t.Fatalf("reader: %v", r.err)
			}
			if moved != int64(len(data)) || r.n != len(data) || r.sum != want {
				t.Fatalf("moved %d, received %d bytes (checksum match %v); want %d", moved, r.n, r.sum == want, len(data))
			}
			if f.carrier.Len() != 0 {
				t.Fatalf("Len after EOF = %d; want 0", f.carrier.Len())
			}
		})
	}
}

// TestSteps checks the Fill and Drain contract on single steps.
func TestSteps(t *testing.T) {
	tests := []struct {
		name string
		// send is written by the client before the steps; eof half-closes it.
		send      string
		eof       bool
		max       int
		wantFill  int
		wantErr   error
		wantDrain string
	}{
		{name: "empty source is EAGAIN", max: 100, wantErr: unix.EAGAIN},
		{name: "eof is zero", eof: true, max: 100},
		{name: "data before eof", send: "last words", eof: true, max: 100, wantFill: 10, wantDrain: "last words"},
		{name: "max clips", send: "0123456789", max: 4, wantFill: 4, wantDrain: "0123"},
		{name: "max zero refused", send: "x", max: 0, wantErr: ErrInvalidMax},
	}
	for _, kind := range carrierKinds {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				f := newFixture(t, kind, 0)
				if tt.send != "" {
					unix.Write(f.client, []byte(tt.send))
				}
				if tt.eof {
					unix.Shutdown(f.client, unix.SHUT_WR)
				}
				if tt.send != "" || tt.eof {
					waitReady(t, f.src, unix.POLLIN)
				}

				n, err := f.carrier.Fill(f.src, tt.max)
				// Bare errnos: the loop compares them without unwrapping.
				if n != tt.wantFill || err != tt.wantErr {
					t.Fatalf("Fill = %d, %v; want %d, %v", n, err, tt.wantFill, tt.wantErr)
				}
				if f.carrier.Len() != tt.wantFill {
					t.Fatalf("Len = %d; want %d", f.carrier.Len(), tt.wantFill)
				}
				if n > 0 {
					if n2, err := f.carrier.Fill(f.src, tt.max); n2 != 0 || err != ErrNotEmpty {
						t.Fatalf("second Fill = %d, %v; want 0, ErrNotEmpty", n2, err)
					}
				}
				if n, err := f.carrier.Drain(f.dst); n != len(tt.wantDrain) || err != nil {
					t.Fatalf("Drain = %d, %v; want %d, nil", n, err, len(tt.wantDrain))
				}
				if f.carrier.Len() != 0 {
					t.Fatalf("Len after Drain = %d; want 0", f.carrier.Len())
				}
				if tt.wantDrain != "" {
					waitReady(t, f.server, unix.POLLIN)
					buf := make([]byte, 64)
					if n, _ := unix.Read(f.server, buf); string(buf[:max(n, 0)]) != tt.wantDrain {
						t.Fatalf("server read %q; want %q", buf[:max(n, 0)], tt.wantDrain)
					}
				}
			})
		}
	}
}

// pattern is the byte at offset off of the stream the full-destination
// test sends; a prime period catches lost, doubled or shifted bytes.
func pattern(off int64) byte { return byte(off % 251) }

// TestDestinationFull fills a destination whose reader is stalled until
// Drain reports EAGAIN, and checks that Len stays exact throughout and
// that every byte arrives once the reader resumes.
func TestDestinationFull(t *testing.T) {
	for _, kind := range carrierKinds {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, kind, 0)
			// Small socket buffers make the destination fill fast.
			unix.SetsockoptInt(f.dst, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
			unix.SetsockoptInt(f.server, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)

			var written, filled, drained int64
			chunk := make([]byte, 16<<10)
			full := false
			for i := 0; i < 10_000 && !full; i++ {
				if f.carrier.Len() == 0 {
					n, err := f.carrier.Fill(f.src, 64<<10)
					if errors.Is(err, unix.EAGAIN) {
						for j := range chunk {
							chunk[j] = pattern(written + int64(j))
						}
						if n, err := unix.Write(f.client, chunk); err == nil {
							written += int64(n)
						}
						waitReady(t, f.src, unix.POLLIN)
						continue
					}
					if err != nil || n == 0 {
						t.Fatalf("Fill = %d, %v", n, err)
					}
					filled += int64(n)
				}
				n, err := f.carrier.Drain(f.dst)
				drained += int64(n)
				switch {
				case errors.Is(err, unix.EAGAIN):
					full = true
				case err != nil:
					t.Fatalf("Drain: %v", err)
				}
			}
			if !full {
				t.Fatal("destination never filled up")
			}
			held := filled - drained
			if held <= 0 || int64(f.carrier.Len()) != held {
				t.Fatalf("Len = %d; want filled-drained = %d > 0", f.carrier.Len(), held)
			}
			if pp, ok := f.carrier.(*Pipe); ok {
				if inPipe, err := unix.IoctlGetInt(pp.rfd, unix.TIOCINQ); err != nil || int64(inPipe) != held {
					t.Fatalf("kernel pipe holds %d (%v); Len says %d", inPipe, err, held)
				}
			}
			if n, err := f.carrier.Drain(f.dst); n != 0 || err != unix.EAGAIN || int64(f.carrier.Len()) != held {
				t.Fatalf("Drain to full dst = %d, %v, Len %d; want 0, EAGAIN, Len %d", n, err, f.carrier.Len(), held)
			}
			if _, err := f.carrier.Fill(f.src, 1); err != ErrNotEmpty {
				t.Fatalf("Fill while holding = %v; want ErrNotEmpty", err)
			}

			// Resume the reader: everything filled arrives, in order.
			var received int64
			buf := make([]byte, 64<<10)
			for i := 0; i < 100_000 && received < filled; i++ {
				if _, err := f.carrier.Drain(f.dst); err != nil && !errors.Is(err, unix.EAGAIN) {
					t.Fatalf("Drain: %v", err)
				}
				n, err := unix.Read(f.server, buf)
				if errors.Is(err, unix.EAGAIN) {
					// Wait for the reader's data, or for room to drain more.
					fds := []unix.PollFd{{Fd: int32(f.server), Events: unix.POLLIN}, {Fd: int32(f.dst), Events: unix.POLLOUT}}
					if f.carrier.Len() == 0 {
						fds = fds[:1]
					}
					if _, err := unix.Poll(fds, int(socktest.Timeout.Milliseconds())); err != nil && err != unix.EINTR {
						t.Fatalf("poll: %v", err)
					}
					continue
				}
				if err != nil || n == 0 {
					t.Fatalf("read = %d, %v", n, err)
				}
				for j, c := range buf[:n] {
					if want := pattern(received + int64(j)); c != want {
						t.Fatalf("byte %d = %d; want %d", received+int64(j), c, want)
					}
				}
				received += int64(n)
			}
			if received != filled || f.carrier.Len() != 0 {
				t.Fatalf("received %d of %d filled bytes, Len %d", received, filled, f.carrier.Len())
			}
		})
	}
}

func TestSpliceUnsupported(t *testing.T) {
	// splice(2) refuses an epoll fd in either direction with EINVAL.
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatalf("epoll_create1: %v", err)
	}
	defer unix.Close(epfd)
	f := newFixture(t, "pipe", 0)

	if n, err := f.carrier.Fill(epfd, 100); n != 0 || err != ErrSpliceUnsupported || f.carrier.Len() != 0 {
		t.Fatalf("Fill from epoll fd = %d, %v, Len %d; want 0, ErrSpliceUnsupported, 0", n, err, f.carrier.Len())
	}
	unix.Write(f.client, []byte("stuck"))
	waitReady(t, f.src, unix.POLLIN)
	if n, err := f.carrier.Fill(f.src, 100); n != 5 || err != nil {
		t.Fatalf("Fill = %d, %v; want 5, nil", n, err)
	}
	if n, err := f.carrier.Drain(epfd); n != 0 || err != ErrSpliceUnsupported || f.carrier.Len() != 5 {
		t.Fatalf("Drain to epoll fd = %d, %v, Len %d; want 0, ErrSpliceUnsupported, 5", n, err, f.carrier.Len())
	}
}

// TestBufferLoadFillAfter: bytes of the caller's own, loaded (in place or
// copied), leave before what FillAfter reads in behind them, in one
// Drain; Load refuses a buffer that holds bytes, and FillAfter a full one.
func TestBufferLoadFillAfter(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		f := newFixture(t, "buffer", 4<<10)
		b := f.carrier.(*Buffer)
		hdr := []byte("PROXY UNKNOWN\r\n")
		if inPlace {
			hdr = append(b.Space()[:0], hdr...)
		}
		if err := b.Load(hdr); err != nil || b.Len() != len(hdr) {
			t.Fatalf("Load = %v, Len %d", err, b.Len())
		}
		if err := b.Load(hdr); err != ErrNotEmpty {
			t.Fatalf("second Load = %v, want ErrNotEmpty", err)
		}
		if n, err := b.FillAfter(f.src, 100); n != 0 || err != unix.EAGAIN {
			t.Fatalf("FillAfter on an empty socket = %d, %v; want EAGAIN", n, err)
		}
		unix.Write(f.client, []byte("hello"))
		waitReady(t, f.src, unix.POLLIN)
		if n, err := b.FillAfter(f.src, 100); n != 5 || err != nil || b.Len() != len(hdr)+5 {
			t.Fatalf("FillAfter = %d, %v, Len %d", n, err, b.Len())
		}
		if n, err := b.Drain(f.dst); n != len(hdr)+5 || err != nil {
			t.Fatalf("Drain = %d, %v", n, err)
		}
		waitReady(t, f.server, unix.POLLIN)
		buf := make([]byte, 64)
		if n, _ := unix.Read(f.server, buf); string(buf[:max(n, 0)]) != "PROXY UNKNOWN\r\nhello" {
			t.Fatalf("server read %q", buf[:max(n, 0)])
		}
	}
	f := newFixture(t, "buffer", 4<<10)
	b := f.carrier.(*Buffer)
	if err := b.Load(make([]byte, b.Cap()+1)); err != ErrInvalidMax {
		t.Fatalf("oversized Load = %v, want ErrInvalidMax", err)
	}
	if err := b.Load(make([]byte, b.Cap())); err != nil || b.Room() != 0 {
		t.Fatalf("full Load = %v, room %d", err, b.Room())
	}
	if _, err := b.FillAfter(f.src, 10); err != ErrInvalidMax {
		t.Fatalf("FillAfter with no room = %v, want ErrInvalidMax", err)
	}
}
