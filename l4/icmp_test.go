package l4

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// forgeUnreachable sends an ICMP port unreachable to from, about a UDP
// datagram from from to to, as anyone on the path (or anyone who guessed
// from's port) could. It needs CAP_NET_RAW.
func forgeUnreachable(t *testing.T, from, to netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		t.Skipf("a raw ICMP socket needs CAP_NET_RAW: %v", err)
	}
	defer unix.Close(fd)
	// The quoted datagram: its IPv4 header and its first 8 bytes (UDP).
	inner := make([]byte, 28)
	inner[0] = 0x45
	binary.BigEndian.PutUint16(inner[2:], 28+4)
	inner[8], inner[9] = 64, unix.IPPROTO_UDP
	src, dst := from.Addr().As4(), to.Addr().As4()
	copy(inner[12:], src[:])
	copy(inner[16:], dst[:])
	binary.BigEndian.PutUint16(inner[10:], checksum(inner[:20]))
	binary.BigEndian.PutUint16(inner[20:], from.Port())
	binary.BigEndian.PutUint16(inner[22:], to.Port())
	binary.BigEndian.PutUint16(inner[24:], 8+4)
	msg := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, inner...) // destination unreachable, port
	binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: src}); err != nil {
		t.Fatal(os.NewSyscallError("sendto", err))
	}
}

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// flowSocket returns the local address of the one open flow's backend
// socket: the port a forger has to guess.
func flowSocket(t *testing.T, s *Server) netip.AddrPort {
	t.Helper()
	var addr netip.AddrPort
	s.eachLoop(func(l *loop) {
		for _, ln := range l.udp {
			for _, f := range ln.flows {
				a, err := sock.LocalAddr(f.fd)
				if err == nil {
					addr = a
				}
			}
		}
	})
	if !addr.IsValid() {
		t.Fatal("no open flow")
	}
	return addr
}

// TestUDPForgedICMPAfterReplies: ICMP errors carry no proof of origin. One
// about a flow that has had replies neither ends it nor charges its
// backend; the flow goes on, and its next reply clears the mark. Only a
// second error with no reply in between ends it, still without a charge.
func TestUDPForgedICMPAfterReplies(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	rec := newRecorder()
	s := startObserved(t, udpConfig(t, []netip.AddrPort{b.addr}, nil), rec)
	be := s.Backends("fe")[0]
	c := udpClient(t, s.Addrs("fe")[0])
	if _, err := udpExchange(c, []byte("q1"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	local := flowSocket(t, s)
	refusals := func() uint64 { return counters(t, s).Drops[DropRefused] }

	forgeUnreachable(t, local, b.addr)
	testutil.WaitFor(t, 10*time.Second, "the ICMP error seen", func() bool { return refusals() == 1 })
	if got, err := udpExchange(c, []byte("q2"), 5*time.Second); err != nil || string(got) != "Aq2" {
		t.Fatalf("after one forged error: %q, %v; want the flow to go on", got, err)
	}
	if c := counters(t, s); c.Active != 1 || c.Total != 1 {
		t.Fatalf("flows active %d, opened %d; want the same one flow", c.Active, c.Total)
	}
	// The reply cleared the mark: one more error is again the first.
	forgeUnreachable(t, local, b.addr)
	testutil.WaitFor(t, 10*time.Second, "the second ICMP error seen", func() bool { return refusals() == 2 })
	if c := counters(t, s); c.Active != 1 {
		t.Fatalf("a flow with a reply since its last ICMP error was closed by the next one")
	}
	forgeUnreachable(t, local, b.addr)
	testutil.WaitFor(t, 10*time.Second, "the flow ended by two errors in a row", func() bool {
		return counters(t, s).Closed[CauseICMPError] == 1
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if n := len(rec.failed[be]); n != 0 {
		t.Errorf("%d failures charged to a backend that answered every datagram", n)
	}
	if st := be.Stats(); st.Failures != [len(st.Failures)]uint64{} {
		t.Errorf("backend failure counters %v, want none", st.Failures)
	}
}
