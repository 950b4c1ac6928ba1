//go:build linux

package splice

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkPump measures one step of the relay's pump, as the event loop
// takes it for one direction of a connection: Fill from the source socket
// into the carrier, Drain into the destination socket. The sockets are
// two non-blocking AF_UNIX socketpairs, client ⇄ src and dst ⇄ server, and
// one goroutine does everything in turn (the client's write, the pump
// step, the server's read), so no scheduler and no TCP stack add noise:
// `make bench-check` holds it to a baseline. The client's and the server's
// calls are raw, as the pump's are: a call through the scheduler
// (entersyscall/exitsyscall) costs a varying number of instructions,
// whether sysmon took the P back meanwhile or not, which spread the
// instruction counts over 25-90%. The sizes are a query through
// the buffer carrier and a 16 KiB chunk through a pipe, the two carriers'
// typical loads.
func BenchmarkPump(b *testing.B) {
	for _, tc := range []struct {
		kind string
		size int
	}{{"buffer", 64}, {"pipe", 16 << 10}} {
		b.Run(fmt.Sprintf("%s/%dB", tc.kind, tc.size), func(b *testing.B) {
			f := newSocketpairFixture(b, tc.kind, 64<<10)
			msg := make([]byte, tc.size)
			got := make([]byte, tc.size)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				if n, err := rawWrite(f.client, msg); err != nil || n != len(msg) {
					b.Fatalf("client write: %d of %d bytes: %v", n, len(msg), err)
				}
				n, err := f.carrier.Fill(f.src, len(msg))
				if err != nil || n != len(msg) {
					b.Fatalf("Fill: %d of %d bytes: %v", n, len(msg), err)
				}
				if n, err := f.carrier.Drain(f.dst); err != nil || n != len(msg) || f.carrier.Len() != 0 {
					b.Fatalf("Drain: %d of %d bytes, %d held: %v", n, len(msg), f.carrier.Len(), err)
				}
				// A socketpair delivers during the write: the whole
				// message is there to read.
				if n, err := rawRead(f.server, got); err != nil || n != len(got) {
					b.Fatalf("server read: %d of %d bytes: %v", n, len(got), err)
				}
			}
		})
	}
}

// newSocketpairFixture is newFixture over AF_UNIX socketpairs instead of
// loopback TCP connections.
func newSocketpairFixture(tb testing.TB, kind string, size int) *fixture {
	tb.Helper()
	f := newFixture(tb, kind, size)
	pair := func() (int, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatalf("socketpair: %v", err)
		}
		tb.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		return fds[0], fds[1]
	}
	f.client, f.src = pair()
	f.dst, f.server = pair()
	return f
}
