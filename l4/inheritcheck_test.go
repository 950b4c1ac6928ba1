package l4

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
)

// rawTCP makes a TCP socket bound to ip (port picked by the kernel),
// listening unless listen is false, and returns it with its address. The
// caller owns it.
func rawTCP(t *testing.T, ip string, listen bool) (int, netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr(ip).As4()
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: a}); err != nil {
		t.Fatal(err)
	}
	if listen {
		if err := unix.Listen(fd, 16); err != nil {
			t.Fatal(err)
		}
	}
	sa, _ := unix.Getsockname(fd)
	return fd, netip.AddrPortFrom(netip.AddrFrom4(a), uint16(sa.(*unix.SockaddrInet4).Port))
}

// Start refuses inherited sockets that are not what the config's address
// needs, each with an error naming the address and what is wrong, and
// closes every socket, inherited ones included.
func TestInheritRefusals(t *testing.T) {
	a := namedBackend(t, "a")
	cfg, err := config.New().Workers(2).Frontend("fe").Listen("127.0.0.1:0").Backend(a.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	key := func(fd int) Socket {
		return Socket{Protocol: config.ProtocolTCP, Listen: netip.MustParseAddrPort("127.0.0.1:0"), Frontend: "fe", FD: fd}
	}
	cases := []struct {
		name  string
		socks func() ([]Socket, string)
	}{
		{"not listening", func() ([]Socket, string) {
			fd, _ := rawTCP(t, "127.0.0.1", false)
			return []Socket{key(fd)}, "inherited socket for tcp 127.0.0.1:0 is not listening"
		}},
		{"another address", func() ([]Socket, string) {
			fd, addr := rawTCP(t, "127.0.0.2", true)
			return []Socket{key(fd)}, "inherited socket for tcp 127.0.0.1:0 is bound to " + addr.String()
		}},
		{"two ports", func() ([]Socket, string) {
			fd1, a1 := rawTCP(t, "127.0.0.1", true)
			fd2, a2 := rawTCP(t, "127.0.0.1", true)
			return []Socket{key(fd1), key(fd2)}, fmt.Sprintf("inherited sockets bound to %v and %v", a1, a2)
		}},
		{"not a socket", func() ([]Socket, string) {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			unix.Close(p[1])
			return []Socket{key(p[0])}, "inherited socket for tcp 127.0.0.1:0: getsockopt: socket operation on non-socket"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fds := openFDs(t)
			s, err := NewServer(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			socks, want := tc.socks()
			if err := s.Inherit(socks); err != nil {
				t.Fatal(err)
			}
			want = `frontend "fe": listen 127.0.0.1:0: ` + want
			if err := s.Start(); err == nil || err.Error() != want {
				t.Errorf("Start: %v\nwant %s", err, want)
			}
			s.Close()
			if n := openFDs(t); n != fds {
				t.Errorf("%d fds open, %d before", n, fds)
			}
		})
	}
}

// An inherited socket whose address no frontend of the new config listens
// on any more is closed at Start: its clients are refused, not left in a
// backlog nobody accepts from. Inherit after Start is refused, and closes
// what it was given.
func TestInheritUnusedAndLate(t *testing.T) {
	a := namedBackend(t, "a")
	s, err := NewServer(testConfig(t, []netip.AddrPort{a.addr}, nil), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fd, gone := rawTCP(t, "127.0.0.1", true)
	if err := s.Inherit([]Socket{{Protocol: config.ProtocolTCP, Listen: gone, FD: fd}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", gone.String(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial of the unused inherited socket's address: %v, want refused", err)
	}
	fd2, late := rawTCP(t, "127.0.0.1", true)
	if err := s.Inherit([]Socket{{Protocol: config.ProtocolTCP, Listen: late, FD: fd2}}); err == nil || err.Error() != "l4: Inherit after Start" {
		t.Errorf("Inherit after Start: %v", err)
	}
	if _, err := net.DialTimeout("tcp", late.String(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial of the socket given after Start: %v, want refused", err)
	}
	// Start is once.
	if err := s.Start(); err == nil || err.Error() != "l4: server already started" {
		t.Errorf("second Start: %v", err)
	}
	s.Close()
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}
