// Package testutil holds small helpers shared by splicer's tests: a log sink
// safe for concurrent writers, a condition wait with a deadline and an
// address that refuses. Only _test.go files import it.
package testutil

import (
	"bytes"
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
// port unreachable. The address is a random one of 127.0.0.0/8 rather than
// 127.0.0.1: test binaries running at the same time bind servers on
// 127.0.0.1 port 0 all the time, and one of them could take a port freed
// there and answer.
func RefusedAddr(t testing.TB, network string) netip.AddrPort {
	t.Helper()
	ip := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
	var addr net.Addr
	if network == "udp" {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			t.Fatal(err)
		}
		addr = c.LocalAddr()
		c.Close()
	} else {
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr()
		ln.Close()
	}
	return netip.MustParseAddrPort(addr.String())
}
