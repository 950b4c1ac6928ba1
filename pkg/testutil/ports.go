package testutil

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
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

// ReserveTCP returns a loopback address for a server that must be told it
// before it starts (a daemon's admin port in its config file). A port found
// free and closed again may be taken by any socket of the machine before
// the server binds it: another test's listener on port 0, or a client's
// ephemeral port. ReserveTCP keeps a socket bound there with SO_REUSEADDR,
// not listening, until the test ends: the kernel gives the port to no
// socket that asks for any free one, and to none that binds it without
// SO_REUSEADDR, while a server that binds it with SO_REUSEADDR (Go's
// net.Listen, splicer's listeners) listens there as on a free port, as many
// times as the test starts it. Connects are refused while none listens.
func ReserveTCP(t testing.TB) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("ReserveTCP: socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		t.Fatalf("ReserveTCP: SO_REUSEADDR: %v", err)
	}
	loopback := [4]byte{127, 0, 0, 1}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback}); err != nil {
		t.Fatalf("ReserveTCP: bind: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("ReserveTCP: getsockname: %v", err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4(loopback), uint16(sa.(*unix.SockaddrInet4).Port))
}
