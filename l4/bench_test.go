package l4

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The relay benchmarks run the whole data plane on loopback with a Go echo
// or sink backend in the same process, so the figures include the client's
// and the backend's work; compare them with each other and across commits,
// and use `make bench` for proxy-only CPU figures.

// BenchmarkRelayPingPong measures one 64-byte request and its echo through
// an established connection.
func BenchmarkRelayPingPong(b *testing.B) {
	be := startBackend(b, echo)
	s := startServer(b, testConfig(b, []netip.AddrPort{be.addr}, nil))
	c := dialFE(b, s)
	c.SetDeadline(time.Now().Add(time.Hour))
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayBulk measures a one-way stream of 1 MiB writes into a
// backend that discards them.
func BenchmarkRelayBulk(b *testing.B) {
	be := startBackend(b, func(c net.Conn) {
		io.Copy(io.Discard, c)
		c.Close()
	})
	s := startServer(b, testConfig(b, []netip.AddrPort{be.addr}, nil))
	c := dialFE(b, s)
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnection measures a whole short connection: connect, a 64-byte
// echo, close.
func BenchmarkConnection(b *testing.B) {
	be := startBackend(b, echo)
	s := startServer(b, testConfig(b, []netip.AddrPort{be.addr}, nil))
	benchConnections(b, s.Addrs("fe")[0].String(), nil)
}
