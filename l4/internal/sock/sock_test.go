//go:build linux

package sock_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/sock/socktest"
)

var (
	loop4 = netip.MustParseAddrPort("127.0.0.1:0")
	loop6 = netip.MustParseAddrPort("[::1]:0")
)

// waitReady waits for fd to report one of events and returns them.
func waitReady(t *testing.T, fd int, events int16) int16 {
	t.Helper()
	revents, err := socktest.WaitReady(fd, events)
	if err != nil {
		t.Fatal(err)
	}
	return revents
}

func closeOnCleanup(t *testing.T, fd int) {
	t.Cleanup(func() { unix.Close(fd) })
}

func listen(t *testing.T, addr netip.AddrPort, reusePort bool) (int, netip.AddrPort) {
	t.Helper()
	lfd, err := sock.Listen(addr, 0, reusePort)
	if err != nil {
		if addr.Addr().Is6() && (errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EAFNOSUPPORT)) {
			t.Skipf("IPv6 loopback unavailable: %v", err)
		}
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	closeOnCleanup(t, lfd)
	local, err := sock.LocalAddr(lfd)
	if err != nil {
		t.Fatalf("LocalAddr: %v", err)
	}
	return lfd, local
}

// connect dials addr and waits for the non-blocking connect to finish.
func connect(t *testing.T, addr netip.AddrPort) int {
	t.Helper()
	fd, inProgress, err := sock.Connect(addr)
	if err != nil {
		t.Fatalf("Connect(%s): %v", addr, err)
	}
	closeOnCleanup(t, fd)
	if inProgress {
		waitReady(t, fd, unix.POLLOUT)
	}
	if err := sock.ConnectError(fd); err != nil {
		t.Fatalf("ConnectError: %v", err)
	}
	return fd
}

func accept(t *testing.T, lfd int) (int, netip.AddrPort) {
	t.Helper()
	waitReady(t, lfd, unix.POLLIN)
	fd, peer, err := sock.Accept(lfd)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	closeOnCleanup(t, fd)
	return fd, peer
}

func assertNonblockCloexec(t *testing.T, fd int) {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK == 0 {
		t.Errorf("fd %d: F_GETFL = %#x, %v; want O_NONBLOCK", fd, fl, err)
	}
	fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || fdfl&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d: F_GETFD = %#x, %v; want FD_CLOEXEC", fd, fdfl, err)
	}
}

func transfer(t *testing.T, from, to int, msg string) {
	t.Helper()
	if n, err := unix.Write(from, []byte(msg)); err != nil || n != len(msg) {
		t.Fatalf("write: %d, %v", n, err)
	}
	waitReady(t, to, unix.POLLIN)
	buf := make([]byte, 64)
	n, err := unix.Read(to, buf)
	if err != nil || string(buf[:n]) != msg {
		t.Fatalf("read = %q, %v; want %q", buf[:max(n, 0)], err, msg)
	}
}

func TestListenAcceptConnect(t *testing.T) {
	tests := []struct {
		name   string
		addr   netip.AddrPort
		v6only int
	}{
		{"ipv4", loop4, -1},
		{"ipv6", loop6, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lfd, laddr := listen(t, tt.addr, false)
			if laddr.Addr() != tt.addr.Addr() || laddr.Port() == 0 {
				t.Fatalf("listener bound to %s; want %s with a port", laddr, tt.addr.Addr())
			}
			if tt.v6only >= 0 {
				if got, err := unix.GetsockoptInt(lfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err != nil || got != tt.v6only {
					t.Errorf("IPV6_V6ONLY = %d, %v; want %d", got, err, tt.v6only)
				}
			}
			if _, _, err := sock.Accept(lfd); err != unix.EAGAIN {
				t.Fatalf("Accept on empty queue = %v; want bare EAGAIN", err)
			}

			client := connect(t, laddr)
			server, peer := accept(t, lfd)
			clientAddr, err := sock.LocalAddr(client)
			if err != nil {
				t.Fatalf("LocalAddr: %v", err)
			}
			if peer != clientAddr {
				t.Errorf("Accept peer = %s; want client address %s", peer, clientAddr)
			}
			if got, err := sock.PeerAddr(client); err != nil || got != laddr {
				t.Errorf("PeerAddr(client) = %s, %v; want %s", got, err, laddr)
			}
			for _, fd := range []int{lfd, client, server} {
				assertNonblockCloexec(t, fd)
			}
			transfer(t, client, server, "ping")
			transfer(t, server, client, "pong")
		})
	}
}

func TestReusePort(t *testing.T) {
	lfd1, addr := listen(t, loop4, true)
	if _, err := sock.Listen(addr, 0, false); !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("second Listen without reusePort = %v; want EADDRINUSE", err)
	}
	lfd2, _ := listen(t, addr, true)

	// The kernel spreads connections by a hash of the 4-tuple; with 64
	// connections the chance that one listener gets none is 2^-63.
	var accepted [2]int
	listeners := []int{lfd1, lfd2}
	for i := 0; i < 64 && (accepted[0] == 0 || accepted[1] == 0); i++ {
		client, _, err := sock.Connect(addr)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		fds := []unix.PollFd{{Fd: int32(lfd1), Events: unix.POLLIN}, {Fd: int32(lfd2), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, int(socktest.Timeout.Milliseconds())); n < 1 || err != nil {
			t.Fatalf("poll listeners = %d, %v", n, err)
		}
		for j, pfd := range fds {
			if pfd.Revents&unix.POLLIN == 0 {
				continue
			}
			fd, _, err := sock.Accept(listeners[j])
			if err != nil {
				t.Fatalf("Accept on listener %d: %v", j, err)
			}
			unix.Close(fd)
			accepted[j]++
		}
		unix.Close(client)
	}
	if accepted[0] == 0 || accepted[1] == 0 {
		t.Fatalf("accepted per listener = %v; want both > 0", accepted)
	}
}

func TestListenUDP(t *testing.T) {
	fd, err := sock.ListenUDP(loop4, true)
	if err != nil {
		t.Fatalf("ListenUDP: %v", err)
	}
	closeOnCleanup(t, fd)
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_DGRAM {
		t.Errorf("SO_TYPE = %d, %v; want SOCK_DGRAM", typ, err)
	}
	if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT); err != nil || on != 1 {
		t.Errorf("SO_REUSEPORT = %d, %v; want 1", on, err)
	}
	if addr, err := sock.LocalAddr(fd); err != nil || addr.Port() == 0 {
		t.Errorf("LocalAddr = %s, %v; want a bound port", addr, err)
	}
	assertNonblockCloexec(t, fd)
}

func TestConnectRefused(t *testing.T) {
	// A bound socket that never listens holds the port, so nobody else
	// can take it, and answers SYNs with RST.
	holder, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	closeOnCleanup(t, holder)
	if err := unix.Bind(holder, sock.ToSockaddr(loop4)); err != nil {
		t.Fatalf("bind: %v", err)
	}
	addr, err := sock.LocalAddr(holder)
	if err != nil {
		t.Fatalf("LocalAddr: %v", err)
	}

	fd, inProgress, err := sock.Connect(addr)
	if err != nil {
		// Loopback may answer before connect(2) returns.
		if !errors.Is(err, unix.ECONNREFUSED) || fd != -1 {
			t.Fatalf("Connect = %d, %v; want -1, ECONNREFUSED", fd, err)
		}
		return
	}
	closeOnCleanup(t, fd)
	if inProgress {
		if revents := waitReady(t, fd, unix.POLLOUT); revents&(unix.POLLOUT|unix.POLLERR) == 0 {
			t.Fatalf("revents = %#x; want POLLOUT or POLLERR", revents)
		}
	}
	if err := sock.ConnectError(fd); err != unix.ECONNREFUSED {
		t.Fatalf("ConnectError = %v; want ECONNREFUSED", err)
	}
}

func TestInvalidAddress(t *testing.T) {
	var zero netip.AddrPort
	if _, err := sock.Listen(zero, 0, false); err == nil {
		t.Error("Listen(invalid) succeeded")
	}
	if _, err := sock.ListenUDP(zero, false); err == nil {
		t.Error("ListenUDP(invalid) succeeded")
	}
	if fd, _, err := sock.Connect(zero); err == nil || fd != -1 {
		t.Errorf("Connect(invalid) = %d, %v; want -1 and an error", fd, err)
	}
}

func TestLingerZeroResetsPeer(t *testing.T) {
	lfd, addr := listen(t, loop4, false)
	client := connect(t, addr)
	server, err := acceptRaw(t, lfd)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if err := sock.SetLingerZero(server); err != nil {
		t.Fatalf("SetLingerZero: %v", err)
	}
	if l, err := unix.GetsockoptLinger(server, unix.SOL_SOCKET, unix.SO_LINGER); err != nil || l.Onoff != 1 || l.Linger != 0 {
		t.Fatalf("SO_LINGER = %+v, %v; want on, 0s", l, err)
	}
	unix.Close(server)

	waitReady(t, client, unix.POLLIN)
	if _, err := unix.Read(client, make([]byte, 8)); err != unix.ECONNRESET {
		t.Fatalf("peer read after linger-0 close = %v; want ECONNRESET", err)
	}
}

// acceptRaw accepts without registering a cleanup, for tests that close
// the fd themselves.
func acceptRaw(t *testing.T, lfd int) (int, error) {
	t.Helper()
	waitReady(t, lfd, unix.POLLIN)
	fd, _, err := sock.Accept(lfd)
	return fd, err
}

func TestShutdownWrite(t *testing.T) {
	lfd, addr := listen(t, loop4, false)
	client := connect(t, addr)
	server, _ := accept(t, lfd)

	if err := sock.ShutdownWrite(client); err != nil {
		t.Fatalf("ShutdownWrite: %v", err)
	}
	waitReady(t, server, unix.POLLIN)
	if n, err := unix.Read(server, make([]byte, 8)); n != 0 || err != nil {
		t.Fatalf("server read = %d, %v; want EOF (0, nil)", n, err)
	}
	// The other direction stays open.
	transfer(t, server, client, "still here")
}

func TestSetNoDelay(t *testing.T) {
	_, addr := listen(t, loop4, false)
	fd := connect(t, addr)
	if err := sock.SetNoDelay(fd); err != nil {
		t.Fatalf("SetNoDelay: %v", err)
	}
	if on, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || on != 1 {
		t.Fatalf("TCP_NODELAY = %d, %v; want 1", on, err)
	}
}

func TestSetKeepAlive(t *testing.T) {
	newSocket := func(t *testing.T) int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("socket: %v", err)
		}
		closeOnCleanup(t, fd)
		return fd
	}
	get := func(t *testing.T, fd, opt int) int {
		v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, opt)
		if err != nil {
			t.Fatalf("getsockopt %d: %v", opt, err)
		}
		return v
	}
	defaults := newSocket(t)
	defIdle, defIntvl, defCnt := get(t, defaults, unix.TCP_KEEPIDLE), get(t, defaults, unix.TCP_KEEPINTVL), get(t, defaults, unix.TCP_KEEPCNT)

	tests := []struct {
		name                string
		idle, interval      time.Duration
		count               int
		wantIdle, wantIntvl int
		wantCount           int
	}{
		{"whole seconds", 30 * time.Second, 5 * time.Second, 4, 30, 5, 4},
		{"rounded up", 1500 * time.Millisecond, time.Millisecond, 1, 2, 1, 1},
		{"zero keeps defaults", 0, 0, 0, defIdle, defIntvl, defCnt},
		{"negative keeps defaults", -time.Second, 10 * time.Second, -1, defIdle, 10, defCnt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := newSocket(t)
			if err := sock.SetKeepAlive(fd, tt.idle, tt.interval, tt.count); err != nil {
				t.Fatalf("SetKeepAlive: %v", err)
			}
			if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || on != 1 {
				t.Errorf("SO_KEEPALIVE = %d, %v; want 1", on, err)
			}
			got := [3]int{get(t, fd, unix.TCP_KEEPIDLE), get(t, fd, unix.TCP_KEEPINTVL), get(t, fd, unix.TCP_KEEPCNT)}
			want := [3]int{tt.wantIdle, tt.wantIntvl, tt.wantCount}
			if got != want {
				t.Errorf("idle, interval, count = %v; want %v", got, want)
			}
		})
	}
}

func TestSockaddrConversion(t *testing.T) {
	tests := []struct {
		name string
		ap   netip.AddrPort
		sa   unix.Sockaddr
		back netip.AddrPort // sock.FromSockaddr(sa)
	}{
		{
			"ipv4", netip.MustParseAddrPort("10.1.2.3:80"),
			&unix.SockaddrInet4{Port: 80, Addr: [4]byte{10, 1, 2, 3}},
			netip.MustParseAddrPort("10.1.2.3:80"),
		},
		{
			"ipv4-mapped unmapped", netip.MustParseAddrPort("[::ffff:10.1.2.3]:443"),
			&unix.SockaddrInet4{Port: 443, Addr: [4]byte{10, 1, 2, 3}},
			netip.MustParseAddrPort("10.1.2.3:443"),
		},
		{
			"ipv6", netip.MustParseAddrPort("[2001:db8::1]:5432"),
			&unix.SockaddrInet6{Port: 5432, Addr: netip.MustParseAddr("2001:db8::1").As16()},
			netip.MustParseAddrPort("[2001:db8::1]:5432"),
		},
		{
			"ipv6 numeric zone", netip.MustParseAddrPort("[fe80::1%3]:22"),
			&unix.SockaddrInet6{Port: 22, Addr: netip.MustParseAddr("fe80::1").As16(), ZoneId: 3},
			netip.MustParseAddrPort("[fe80::1%3]:22"),
		},
		{"invalid", netip.AddrPort{}, nil, netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sa := sock.ToSockaddr(tt.ap)
			switch want := tt.sa.(type) {
			case nil:
				if sa != nil {
					t.Fatalf("ToSockaddr = %#v; want nil", sa)
				}
				return
			case *unix.SockaddrInet4:
				if got, ok := sa.(*unix.SockaddrInet4); !ok || got.Port != want.Port || got.Addr != want.Addr {
					t.Fatalf("ToSockaddr = %#v; want %#v", sa, want)
				}
			case *unix.SockaddrInet6:
				if got, ok := sa.(*unix.SockaddrInet6); !ok || got.Port != want.Port || got.Addr != want.Addr || got.ZoneId != want.ZoneId {
					t.Fatalf("ToSockaddr = %#v; want %#v", sa, want)
				}
			}
			if got := sock.FromSockaddr(tt.sa); got != tt.back {
				t.Errorf("FromSockaddr = %s; want %s", got, tt.back)
			}
		})
	}

	mapped := &unix.SockaddrInet6{Port: 7, Addr: netip.MustParseAddr("::ffff:192.0.2.1").As16()}
	if got, want := sock.FromSockaddr(mapped), netip.MustParseAddrPort("192.0.2.1:7"); got != want {
		t.Errorf("FromSockaddr(4-in-6) = %s; want %s", got, want)
	}
	if got := sock.FromSockaddr(&unix.SockaddrUnix{Name: "/tmp/x"}); got.IsValid() {
		t.Errorf("FromSockaddr(unix) = %s; want invalid", got)
	}
}
