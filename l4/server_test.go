package l4

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

func TestShutdownWaitsForOpenConnections(t *testing.T) {
	fds0, g0 := openFDs(t), runtime.NumGoroutine()
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 6)); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(testCtx(t, 10*time.Second)) }()

	// New clients are refused once the listeners are closed...
	testutil.WaitFor(t, 5*time.Second, "listeners closed", func() bool {
		c, err := net.DialTimeout("tcp", s.Addrs("fe")[0].String(), time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	// ...while the open connection keeps working.
	if _, err := c.Write([]byte("during")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 6)); err != nil {
		t.Fatalf("open connection broken during shutdown: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a connection open", err)
	default:
	}
	c.CloseWrite()
	io.Copy(io.Discard, c)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last connection ended")
	}
	if err := s.Shutdown(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("second Shutdown: %v, want ErrServerClosed", err)
	}
	c.Close()
	b.close()
	settle(t, fds0, g0)
}

func TestShutdownDeadlineClosesConnections(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("Shutdown took %v, want about 200ms", d)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after the shutdown deadline")
	}
	if n := s.ActiveConnections(); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

func TestCloseClosesEverythingAtOnce(t *testing.T) {
	fds0, g0 := openFDs(t), runtime.NumGoroutine()
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	var conns []*net.TCPConn
	for i := 0; i < 20; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("x"))
		io.ReadFull(c, make([]byte, 1))
		conns = append(conns, c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("conn %d still open after Close", i)
		}
		c.Close()
	}
	if err := s.Close(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("second Close: %v", err)
	}
	b.close()
	settle(t, fds0, g0)
}

func TestIPv6Frontend(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	b := startBackend(t, echo)
	cfg, err := config.New().Workers(2).Frontend("fe").Listen("[::1]:0", "127.0.0.1:0").
		Backend(b.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg)
	for _, a := range s.Addrs("fe") {
		c, err := net.DialTimeout("tcp", a.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, _, err := exchange(c.(*net.TCPConn), []byte("v6 or v4"))
		c.Close()
		if err != nil || got != [32]byte(sha256Of([]byte("v6 or v4"))) {
			t.Fatalf("via %s: %v", a, err)
		}
	}
}

// TestAcceptPausesWhenOutOfFDs lowers the process's open-files limit so
// accept fails with EMFILE: the listener must pause (and log once) rather
// than spin, and serve the waiting client once fds are free again.
func TestAcceptPausesWhenOutOfFDs(t *testing.T) {
	b := startBackend(t, echo)
	var logs testutil.SyncBuffer
	srv, err := NewServer(testConfig(t, []netip.AddrPort{b.addr}, nil),
		zerolog.New(&logs).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// The client socket is made while fds are plentiful; it connects
	// after the limit dropped, so the proxy's accept is what fails.
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cfd)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(openFDs(t) + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	// The limit bounds fd numbers, not their count: fill every free
	// number below it.
	var fillers []int
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		// Raise the limit before freeing the fillers, so nothing (the Go
		// backend's accept included) sees EMFILE after the restore.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		for _, fd := range fillers {
			unix.Close(fd)
		}
	}
	defer restore()
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	fe := srv.Addrs("fe")[0]
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Addr: fe.Addr().As4(), Port: int(fe.Port())}); err != nil {
		restore()
		t.Fatal(err)
	}
	if _, err := unix.Write(cfd, []byte("waiting")); err != nil {
		restore()
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "pause logged", func() bool {
		return strings.Contains(logs.String(), "pausing this listener")
	})
	cpu0 := cpuTime(t)
	time.Sleep(300 * time.Millisecond) // three pause periods, to see it not spin
	cpuPaused := cpuTime(t) - cpu0
	restore()
	tv := unix.Timeval{Sec: 10}
	unix.SetsockoptTimeval(cfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	got := make([]byte, 16)
	n, err := unix.Read(cfd, got)
	for errors.Is(err, unix.EINTR) {
		n, err = unix.Read(cfd, got)
	}
	if err != nil || string(got[:n]) != "waiting" {
		t.Fatalf("after fds came back: %q, %v\nlog:\n%s", got[:max(n, 0)], err, logs.String())
	}
	if cpuPaused > 150*time.Millisecond {
		t.Errorf("used %v of CPU in 300ms while out of fds: spinning?", cpuPaused)
	}
	if n := strings.Count(logs.String(), "pausing this listener"); n != 1 {
		t.Errorf("pause logged %d times, want 1 (rate-limited)", n)
	}
}
