//go:build linux

package socktest

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
)

// Timeout bounds every wait for readiness: generous for a loaded machine,
// finite so that a bug fails a test instead of hanging it.
const Timeout = 30 * time.Second

// WaitReady polls fd until it reports one of events (unix.POLLIN,
// unix.POLLOUT, ...) or an error condition, and returns the reported
// events. It fails after Timeout. It returns an error rather than failing
// a test so that helper goroutines can use it too.
func WaitReady(fd int, events int16) (int16, error) {
	deadline := time.Now().Add(Timeout)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("poll fd %d: %w", fd, err)
		}
		if n == 1 {
			return fds[0].Revents, nil
		}
	}
	return 0, fmt.Errorf("fd %d not ready for %#x within %v", fd, events, Timeout)
}

// TCPPair returns the two ends of a connected loopback TCP connection as
// raw non-blocking fds; tb's cleanup closes them, so the test must not.
func TCPPair(tb testing.TB) (client, server int) {
	tb.Helper()
	lfd, err := sock.Listen(netip.MustParseAddrPort("127.0.0.1:0"), 1, false)
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	defer unix.Close(lfd)
	addr, err := sock.LocalAddr(lfd)
	if err != nil {
		tb.Fatalf("LocalAddr: %v", err)
	}
	client, inProgress, err := sock.Connect(addr)
	if err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	tb.Cleanup(func() { unix.Close(client) })
	if inProgress {
		if _, err := WaitReady(client, unix.POLLOUT); err != nil {
			tb.Fatal(err)
		}
	}
	if err := sock.ConnectError(client); err != nil {
		tb.Fatalf("connect: %v", err)
	}
	if _, err := WaitReady(lfd, unix.POLLIN); err != nil {
		tb.Fatal(err)
	}
	server, _, err = sock.Accept(lfd)
	if err != nil {
		tb.Fatalf("Accept: %v", err)
	}
	tb.Cleanup(func() { unix.Close(server) })
	return client, server
}
