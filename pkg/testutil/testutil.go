// Package testutil holds small helpers shared by splicer's tests: a log sink
// safe for concurrent writers, a condition wait with a deadline and an
// address that refuses, a CA for TLS tests, a run of a test as user
// nobody and a count of open fds. Only _test.go files import it.
package testutil

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use, as a log sink for
// components that log from several goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// WaitFor polls cond every 5 ms until it holds, and fails the test naming
// what it waited for when d passes first.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// RefusedAddr returns a loopback address where nothing listens over network
// ("tcp" or "udp"), so a connect is refused and a datagram draws an ICMP
// port unreachable. Test binaries running at the same time keep binding
// sockets, so the address must stay free after it is handed out:
//   - it is a random one of 127.0.0.0/8 rather than 127.0.0.1, where every
//     test server binds;
//   - its port lies below the kernel's ephemeral range (32768 and up by
//     default), where no port-0 bind lands: a socket bound to 0.0.0.0 on an
//     ephemeral port would receive datagrams sent to any 127.x address;
//   - and above 28000, clear of the ports tests bind explicitly.
func RefusedAddr(t testing.TB, network string) netip.AddrPort {
	t.Helper()
	for try := 0; try < 100; try++ {
		ip := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
		addr := netip.AddrPortFrom(ip, uint16(28000+rand.IntN(4700)))
		var c io.Closer
		var err error
		if network == "udp" {
			c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		} else {
			c, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
		}
		if err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatalf("no free %s port found for a refused address", network)
	return netip.AddrPort{}
}
