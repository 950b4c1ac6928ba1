//go:build linux

package sock

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// pipeFD returns the read end of a pipe: a descriptor that is not a
// socket.
func pipeFD(t *testing.T) int {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0]
}

// newSocket returns a socket of family and typ, closed at cleanup.
func newSocket(t *testing.T, family, typ int) int {
	t.Helper()
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestCallsOnWrongDescriptors: every setup call given a descriptor that is
// not the socket it needs (a pipe, a UDP socket for a TCP option, a socket
// not connected) fails with the system call and the exact errno, and the
// queries that cannot fail say "nothing" instead.
func TestCallsOnWrongDescriptors(t *testing.T) {
	pipe := pipeFD(t)
	udp := newSocket(t, unix.AF_INET, unix.SOCK_DGRAM)
	tcp := newSocket(t, unix.AF_INET, unix.SOCK_STREAM)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"SetKeepAlive on a pipe", SetKeepAlive(pipe, time.Second, time.Second, 3), "setsockopt: socket operation on non-socket"},
		{"SetKeepAlive on UDP", SetKeepAlive(udp, time.Second, time.Second, 3), "setsockopt: protocol not available"},
		{"SetNoDelay on UDP", SetNoDelay(udp), "setsockopt: protocol not available"},
		{"SetOOBInline on a pipe", SetOOBInline(pipe), "setsockopt: socket operation on non-socket"},
		{"SetLingerZero on a pipe", SetLingerZero(pipe), "setsockopt: socket operation on non-socket"},
		{"SetIncomingCPU on a pipe", SetIncomingCPU(pipe, 0), "setsockopt: socket operation on non-socket"},
		{"IncomingCPU of a pipe", second(IncomingCPU(pipe)), "getsockopt: socket operation on non-socket"},
		{"ConnectError of a pipe", ConnectError(pipe), "getsockopt: socket operation on non-socket"},
		{"ShutdownWrite unconnected", ShutdownWrite(tcp), "shutdown: transport endpoint is not connected"},
		{"LocalAddr of a pipe", second(LocalAddr(pipe)), "getsockname: socket operation on non-socket"},
		{"EnablePktinfo on a pipe", EnablePktinfo(pipe, netip.MustParseAddrPort("0.0.0.0:53")),
			"pktinfo on 0.0.0.0:53: setsockopt: socket operation on non-socket"},
		{"SetReceiveBuffer on a pipe", second(SetReceiveBuffer(pipe, 1<<20)), "setsockopt SO_RCVBUF: socket operation on non-socket"},
		{"EnableDropCount on a pipe", EnableDropCount(pipe), "setsockopt SO_RXQ_OVFL: socket operation on non-socket"},
		{"DropCount of a pipe", second(DropCount(pipe)), "getsockopt SO_MEMINFO: socket operation on non-socket"},
		{"RecvFrom of an empty socket", third(RecvFrom(udp, make([]byte, 16))), "resource temporarily unavailable"},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
	if n := Unread(pipe); n != 0 {
		t.Errorf("Unread of an empty pipe = %d", n)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if n, mark := Unread(int(null.Fd())), AtUrgentMark(int(null.Fd())); n != 0 || mark {
		t.Errorf("Unread, AtUrgentMark of /dev/null = %d, %v; want 0, false", n, mark)
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

// TestSocketsAtFileLimit: at the open-file limit, every call that makes a
// socket fails with socket: EMFILE, naming the address, and leaks nothing.
func TestSocketsAtFileLimit(t *testing.T) {
	var lerr, uerr, cerr error
	free := testutil.AtFileLimit(t, 0, func() {
		_, lerr = Listen(netip.MustParseAddrPort("127.0.0.1:0"), 0, false)
		_, uerr = UDPSocket(netip.MustParseAddrPort("127.0.0.1:53"))
		_, _, cerr = Connect(netip.MustParseAddrPort("127.0.0.1:1"))
	})
	for _, tc := range []struct {
		err  error
		want string
	}{
		{lerr, "bind 127.0.0.1:0: socket: too many open files"},
		{uerr, "socket: too many open files"},
		{cerr, "connect 127.0.0.1:1: socket: too many open files"},
	} {
		if tc.err == nil || tc.err.Error() != tc.want || !errors.Is(tc.err, unix.EMFILE) {
			t.Errorf("%v, want %q", tc.err, tc.want)
		}
	}
	if after := testutil.LowestFreeFD(t); after != free {
		t.Errorf("lowest free descriptor %d after the failures, was %d", after, free)
	}
}

// TestConnectFailsAtOnce: a connect the kernel refuses before any packet
// (no TCP to a broadcast address) closes its socket and reports the error
// with the address.
func TestConnectFailsAtOnce(t *testing.T) {
	fd, inProgress, err := Connect(netip.MustParseAddrPort("255.255.255.255:80"))
	if fd != -1 || inProgress || err == nil || err.Error() != "connect 255.255.255.255:80: connect: network is unreachable" {
		t.Fatalf("Connect = %d, %v, %v", fd, inProgress, err)
	}
}

// TestAcceptPeerFamilies: a dual-stack listener (one not made by Listen,
// such as one inherited) reports an IPv4 client as IPv4, not as an
// IPv4-mapped IPv6 address; a Unix-domain listener's peers have no
// address.
func TestAcceptPeerFamilies(t *testing.T) {
	lfd := newSocket(t, unix.AF_INET6, unix.SOCK_STREAM)
	if err := unix.SetsockoptInt(lfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet6{}); err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	port := 0
	if sa, err := unix.Getsockname(lfd); err == nil {
		port = sa.(*unix.SockaddrInet6).Port
	}
	c := newSocket(t, unix.AF_INET, unix.SOCK_STREAM)
	if err := unix.Connect(c, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	fd, peer, err := Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	local, _ := LocalAddr(c)
	if peer != local || !peer.Addr().Is4() {
		t.Errorf("dual-stack peer %v, want %v", peer, local)
	}

	path := t.TempDir() + "/s"
	ufd := newSocket(t, unix.AF_UNIX, unix.SOCK_STREAM)
	if err := unix.Bind(ufd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ufd, 1); err != nil {
		t.Fatal(err)
	}
	uc := newSocket(t, unix.AF_UNIX, unix.SOCK_STREAM)
	if err := unix.Connect(uc, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	fd, peer, err = Accept(ufd)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if peer.IsValid() {
		t.Errorf("Unix-domain peer %v, want none", peer)
	}
}

// TestBatchWithoutPktinfo: a batch that did not ask for pktinfo, or whose
// socket does not send it, has no destination for its datagrams; a batch
// with every slot queued reads nothing.
func TestBatchWithoutPktinfo(t *testing.T) {
	rx, addr, tx := udpPair(t)
	to := MakeRawAddr(addr)
	if err := SendTo(tx, []byte("a"), &to); err != nil {
		t.Fatal(err)
	}
	if err := SendTo(tx, []byte("b"), &to); err != nil {
		t.Fatal(err)
	}
	for _, pktinfo := range []bool{false, true} {
		b := NewBatch(1, 64, pktinfo)
		waitReadable(t, rx)
		if n, err := b.RecvTail(rx, 1); n != 1 || err != nil {
			t.Fatalf("RecvTail = %d, %v", n, err)
		}
		if d := b.Dest(0); d.IsValid() {
			t.Errorf("pktinfo %v: Dest = %v on a socket without IP_PKTINFO", pktinfo, d)
		}
		b.Keep(0, &to, netip.Addr{})
		if n, err := b.RecvTail(rx, 0); n != 0 || err != nil {
			t.Errorf("RecvTail with every slot queued = %d, %v; want 0, nil", n, err)
		}
	}
}

// waitReadable waits until fd has a datagram.
func waitReadable(t *testing.T, fd int) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(pfd, 10000); err != nil || pfd[0].Revents&unix.POLLIN == 0 {
		t.Fatalf("poll: %v, revents %#x", err, pfd[0].Revents)
	}
}

// TestCmsgBounds: control data whose headers lie about their lengths is
// read as no message, never past the slot's control buffer.
func TestCmsgBounds(t *testing.T) {
	b := NewBatch(1, 64, true)
	hdr := func(length int, level, typ int32) []byte {
		c := make([]byte, unix.SizeofCmsghdr)
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		cm.SetLen(length)
		cm.Level, cm.Type = level, typ
		return c
	}
	other := hdr(unix.CmsgLen(4), unix.SOL_SOCKET, unix.SCM_RIGHTS)
	for _, tc := range []struct {
		name string
		ctrl []byte
	}{
		{"length below the header", hdr(4, unix.SOL_SOCKET, unix.SO_RXQ_OVFL)},
		{"length past the buffer", hdr(unix.CmsgLen(64), unix.SOL_SOCKET, unix.SO_RXQ_OVFL)},
		{"next message past the buffer", append(other, 1, 2, 3, 4)},
	} {
		n := copy(b.ctrl, tc.ctrl)
		b.hdrs[0].Hdr.SetControllen(n)
		if data := b.cmsg(0, unix.SOL_SOCKET, unix.SO_RXQ_OVFL); data != nil {
			t.Errorf("%s: cmsg = %v, want nil", tc.name, data)
		}
	}
}
