package sockmap

import (
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openMap opens a Map for the test, or skips it when the process lacks
// the privileges (CAP_BPF and CAP_NET_ADMIN, or root).
func openMap(t testing.TB) *Map {
	t.Helper()
	m, err := Open(64)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		t.Skipf("loading a BPF program needs CAP_BPF and CAP_NET_ADMIN (run the tests as root): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// chain is client <-> a [the kernel relay] b <-> server, on loopback: a
// and b are the relay's sockets, raw fds as the event loop holds them.
type chain struct {
	client, server *net.TCPConn
	a, b           int
}

// newChain connects a client and a server through two sockets of ours.
func newChain(t testing.TB) *chain {
	t.Helper()
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	lfd := rawSocket(t)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	c := &chain{}
	client, err := net.DialTCP("tcp", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port})
	if err != nil {
		t.Fatal(err)
	}
	c.client = client
	t.Cleanup(func() { c.client.Close() })
	if c.a, _, err = unix.Accept4(lfd, unix.SOCK_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if c.b, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		t.Fatal(err)
	}
	// A test that closes a or b itself sets it to -1.
	t.Cleanup(func() {
		for _, fd := range []int{c.a, c.b} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	})
	if err := unix.Connect(c.b, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: srv.Addr().(*net.TCPAddr).Port}); err != nil {
		t.Fatal(err)
	}
	server, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.server = server.(*net.TCPConn)
	t.Cleanup(func() { c.server.Close() })
	for _, fd := range []int{c.a, c.b} {
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// rawSocket is a TCP socket closed at cleanup.
func rawSocket(t testing.TB) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// tcpInfo reads fd's TCP_INFO.
func tcpInfo(t testing.TB, fd int) *unix.TCPInfo {
	t.Helper()
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

// written is every byte written into fd's send queue so far: acknowledged
// or still queued.
func written(t testing.TB, fd int) int64 {
	t.Helper()
	q, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil {
		t.Fatal(err)
	}
	return int64(tcpInfo(t, fd).Bytes_acked) + int64(q)
}

// counts are a pair's byte counts when it entered the map, from which the
// bytes the kernel holds are worked out.
type counts struct{ recvA, recvB, sentA, sentB int64 }

func countsOf(t testing.TB, c *chain) counts {
	return counts{
		recvA: int64(tcpInfo(t, c.a).Bytes_received), recvB: int64(tcpInfo(t, c.b).Bytes_received),
		sentA: written(t, c.a), sentB: written(t, c.b),
	}
}

// held is how many bytes the kernel took from one socket of the pair (a,
// when fromA) and has not yet written into the other's send queue: they
// wait in the other's redirect queue. fin says the socket's peer's FIN is
// in: it counts one in bytes_received (its sequence number), which is not
// a byte of data.
func (c *chain) held(t testing.TB, base counts, fromA, fin bool) int64 {
	from, to, recv0, sent0 := c.b, c.a, base.recvB, base.sentA
	if fromA {
		from, to, recv0, sent0 = c.a, c.b, base.recvA, base.sentB
	}
	recv := int64(tcpInfo(t, from).Bytes_received) - recv0
	if fin {
		recv--
	}
	return recv - (written(t, to) - sent0)
}

// waitEvent waits until fd reports one of the events in want.
func waitEvent(t testing.TB, fd int, want uint32, d time.Duration) uint32 {
	t.Helper()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: want}); err != nil {
		t.Fatal(err)
	}
	evs := make([]unix.EpollEvent, 1)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, err := unix.EpollWait(ep, evs, int(time.Until(deadline)/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return evs[0].Events
		}
	}
	t.Fatalf("no event %#x on fd %d within %v", want, fd, d)
	return 0
}
