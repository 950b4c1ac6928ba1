//go:build linux

package splice

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock/socktest"
)

// BenchmarkCarrier64KiB relays 64 KiB per op from one loopback TCP
// connection to another, as the event loop does, through a 64 KiB pipe
// or a 64 KiB buffer. A writer and a reader goroutine feed and empty the
// two connections.
func BenchmarkCarrier64KiB(b *testing.B) {
	const chunk = 64 << 10
	for _, kind := range carrierKinds {
		b.Run(kind, func(b *testing.B) {
			f := newFixture(b, kind, chunk)
			errc := make(chan error, 2)
			go func() { errc <- writeAll(f.client, make([]byte, chunk), b.N) }()
			go func() { errc <- readAll(f.server, func([]byte) {}) }()

			b.SetBytes(chunk)
			b.ReportAllocs()
			b.ResetTimer()
			moved, err := f.relay(chunk)
			b.StopTimer()
			if err != nil {
				b.Fatalf("relay: %v", err)
			}
			for range 2 {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			if moved != int64(b.N)*chunk {
				b.Fatalf("moved %d bytes; want %d", moved, int64(b.N)*chunk)
			}
		})
	}
}

func BenchmarkCacheGetPutPipe(b *testing.B) {
	cache := NewPool(1, 0, 0).NewCache()
	defer cache.Close()
	pp, _ := cache.GetPipe()
	cache.PutPipe(pp) // warm: the loop below reuses the idle pipe
	b.ReportAllocs()
	for b.Loop() {
		pp, ok := cache.GetPipe()
		if !ok {
			b.Fatal("GetPipe: no pipe")
		}
		cache.PutPipe(pp)
	}
}

func BenchmarkCacheGetPutBuffer(b *testing.B) {
	cache := NewPool(0, 0, 0).NewCache()
	b.ReportAllocs()
	for b.Loop() {
		cache.PutBuffer(cache.GetBuffer())
	}
}

// BenchmarkSmallMessage sends 64 bytes over a loopback TCP connection and
// reads them on the other end, one syscall each way, as the buffer carrier
// does for a query or a reply: with read(2)/write(2) and with the
// recvfrom(2)/sendto(2) pair that rawRead and rawWrite use.
func BenchmarkSmallMessage(b *testing.B) {
	readWrite := func(rfd, wfd int, p []byte) (int, error) {
		if _, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(wfd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))); errno != 0 {
			return 0, errno
		}
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(rfd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
	recvSend := func(rfd, wfd int, p []byte) (int, error) {
		if _, err := rawWrite(wfd, p); err != nil {
			return 0, err
		}
		return rawRead(rfd, p)
	}
	for _, tc := range []struct {
		name string
		op   func(rfd, wfd int, p []byte) (int, error)
	}{{"read-write", readWrite}, {"recvfrom-sendto", recvSend}} {
		b.Run(tc.name, func(b *testing.B) {
			client, server := socktest.TCPPair(b)
			p := make([]byte, 64)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				// Loopback delivers during the write, so the read finds
				// the whole message.
				n, err := tc.op(server, client, p)
				if err != nil || n != len(p) {
					b.Fatalf("moved %d of %d bytes: %v", n, len(p), err)
				}
			}
		})
	}
}
