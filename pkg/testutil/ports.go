package testutil

import (
	"net"
	"net/netip"
	"testing"
)

// FreeUDPAndTCP returns a loopback port free for both UDP and TCP at the
// time of the call, for a server that binds both and cannot report a port
// it chose itself (dnsmasq). A port free for UDP alone is often taken for
// TCP on a machine busy with tests, whose clients' ephemeral ports come
// from the same range.
func FreeUDPAndTCP(t testing.TB) netip.AddrPort {
	t.Helper()
	for try := 0; try < 20; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		addr := netip.MustParseAddrPort(pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return netip.AddrPort{}
}
