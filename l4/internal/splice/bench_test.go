//go:build linux

package splice

import "testing"

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
