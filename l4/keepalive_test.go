package l4

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// onLoops runs f on every loop goroutine and waits for all of them.
func onLoops(s *Server, f func(*loop)) {
	done := make(chan struct{}, len(s.loops))
	for _, l := range s.loops {
		l.post(func(l *loop) {
			f(l)
			done <- struct{}{}
		})
	}
	for range s.loops {
		<-done
	}
}

// keepaliveOf reads SO_KEEPALIVE on both sockets of the single connection
// the server holds.
func keepaliveOf(t *testing.T, s *Server) (client, backend int) {
	t.Helper()
	n := 0
	onLoops(s, func(l *loop) {
		for c := range l.liveConns() {
			n++
			client, _ = unix.GetsockoptInt(c.cfd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
			backend, _ = unix.GetsockoptInt(c.bfd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		}
	})
	if n != 1 {
		t.Fatalf("server holds %d connections, want 1", n)
	}
	return client, backend
}

// TestBackendKeepaliveArmedWhenIdle checks that the client socket inherits
// keepalive from the listener at once, and that the backend socket gets it
// after keepalive_idle without traffic.
func TestBackendKeepaliveArmedWhenIdle(t *testing.T) {
	b := startBackend(t, echo)
	cfg := testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
		fb.KeepaliveIdle(time.Second).KeepaliveInterval(time.Second).KeepaliveCount(3)
	})
	s := startServer(t, cfg)
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))

	if cl, be := keepaliveOf(t, s); cl != 1 || be != 0 {
		t.Fatalf("right after connect: client keepalive %d, backend %d; want 1, 0", cl, be)
	}
	testutil.WaitFor(t, 5*time.Second, "backend keepalive armed", func() bool {
		_, be := keepaliveOf(t, s)
		return be == 1
	})
	onLoops(s, func(l *loop) {
		for c := range l.liveConns() {
			idle, _ := unix.GetsockoptInt(c.bfd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
			cnt, _ := unix.GetsockoptInt(c.bfd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
			if idle != 1 || cnt != 3 {
				t.Errorf("backend keepalive idle %d s, count %d; want 1, 3", idle, cnt)
			}
		}
	})
}

func TestKeepaliveOff(t *testing.T) {
	b := startBackend(t, echo)
	cfg := testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
		fb.TCPKeepalive(false).IdleTimeout(1500 * time.Millisecond)
	})
	s := startServer(t, cfg)
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	if cl, be := keepaliveOf(t, s); cl != 0 || be != 0 {
		t.Fatalf("keepalive off: client %d, backend %d", cl, be)
	}
}
