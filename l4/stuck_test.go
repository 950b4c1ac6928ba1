package l4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// A connection whose client does not read holds bytes in its carrier and
// cannot be handed over without copying them: at the hand-over's deadline
// it is left to the old server, which relays on. Every byte still reaches
// the client, in order, once it reads.
func TestHandoffLeavesAConnectionThatCannotEmpty(t *testing.T) {
	const size = 16 << 20
	data := randomBlock(size, 7)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
	cfg := func() *config.Config { return testConfig(t, []netip.AddrPort{b.addr}, nil) }
	old, nu := startServer(t, cfg()), startServer(t, cfg())
	c := dialFE(t, old)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// The client reads nothing: the kernel buffers fill, and the rest
	// waits in the connection's carrier.
	waitBlocked(t, old)
	send, adopted := handTo(old, nu)
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	st := old.Handoff(ctx, send)
	if el := time.Since(start); el < deadline {
		t.Errorf("Handoff returned after %v, before its deadline %v", el, deadline)
	}
	if st != (HandoffStats{Left: 1}) || adopted() != (HandoffStats{}) {
		t.Fatalf("handed %+v, adopted %+v; want the connection left to the old server", st, adopted())
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes (equal %v), %v", len(got), size, bytes.Equal(got, data), err)
	}
	c.Close()
	waitCause(t, old, CauseBackendFIN, 1)
}

// A backend the kernel refuses to connect to at once (no route to a
// broadcast address) is a failed try, counted as unreachable against it,
// and the next backend takes the client: it loses nothing.
func TestConnectFailsAtOnce(t *testing.T) {
	b := startBackend(t, echo)
	bcast := netip.MustParseAddrPort("255.255.255.255:80")
	s := startServer(t, testConfig(t, []netip.AddrPort{bcast, b.addr}, nil))
	const n = 4
	for i := 0; i < n; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := exchange(c, []byte("hello")); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	lines := checkLogLines(t, s, CauseClientFIN, n)
	viaBroadcast := 0
	for _, l := range lines {
		tries := l.fields["tries"].([]any)
		first := tries[0].(map[string]any)
		if first["backend"] == bcast.String() {
			viaBroadcast++
			if first["result"] != "unreachable" || len(tries) != 2 {
				t.Errorf("tries %v; want the broadcast address unreachable, then the backend", tries)
			}
		}
	}
	fails := s.Backends("fe")[0].Stats().Failures[backend.FailUnreachable]
	if viaBroadcast == 0 || fails != uint64(viaBroadcast) {
		t.Errorf("%d clients tried the broadcast address first, %d unreachable failures counted", viaBroadcast, fails)
	}
}

// A connection whose backend reset after its last byte, and whose client
// reads nothing, waits for the client to take what was sent to it, but
// only up to the idle timeout, counted from the last byte it took: then
// it ends, and the client gets a reset (its stream was cut).
func TestClosingGivesUpOnASurvivorThatDoesNotRead(t *testing.T) {
	const idle = 500 * time.Millisecond
	reset := make(chan time.Time, 1)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.Write(randomBlock(256<<10, 3))
		// Reset once the server has read everything: nothing sent is
		// lost to the reset.
		waitAcked(c.(*net.TCPConn))
		c.(*net.TCPConn).SetLinger(0)
		reset <- time.Now()
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) { fb.IdleTimeout(idle) }))
	d := net.Dialer{Timeout: 5 * time.Second, Control: smallReceiveBuffer}
	nc, err := d.Dial("tcp", s.Addrs("fe")[0].String())
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	var at time.Time
	select {
	case at = <-reset:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never reset")
	}
	waitCause(t, s, CauseBackendReset, 1)
	if el := time.Since(at); el < idle {
		t.Errorf("ended %v after the backend's reset, before the idle timeout %v", el, idle)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); !errors.Is(err, errConnReset) {
		t.Errorf("the client's read: %v, want a reset", err)
	}
}

// smallReceiveBuffer is a Dialer.Control that gives the socket a small
// receive buffer before it connects, so its window stays small.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	if err != nil {
		return err
	}
	return serr
}

// waitBlocked waits until the one connection of s holds bytes for a client
// that does not read: its backend-to-client carrier holds bytes and the
// client's socket refused more (EAGAIN). It stays so until the client
// reads.
func waitBlocked(t *testing.T, s *Server) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "bytes held for a client that does not read", func() bool {
		blocked := false
		onLoops(s, func(l *loop) {
			for c := range l.liveConns() {
				if c.state == stateRelaying && !c.down.empty() && !c.down.dstReady {
					blocked = true
				}
			}
		})
		return blocked
	})
}

// A closing connection whose survivor fails too (the client, which never
// read, resets) ends at once, under the cause of the first failure: it
// does not wait for the idle timeout.
func TestClosingEndsWhenTheSurvivorFails(t *testing.T) {
	const idle = 30 * time.Second
	reset := make(chan struct{})
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.Write(randomBlock(256<<10, 4))
		waitAcked(c.(*net.TCPConn))
		c.(*net.TCPConn).SetLinger(0)
		close(reset)
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) { fb.IdleTimeout(idle) }))
	d := net.Dialer{Timeout: 5 * time.Second, Control: smallReceiveBuffer}
	nc, err := d.Dial("tcp", s.Addrs("fe")[0].String())
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*net.TCPConn)
	select {
	case <-reset:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never reset")
	}
	testutil.WaitFor(t, 5*time.Second, "the connection closing", func() bool {
		list, _ := s.Connections("fe", 0, 10)
		return len(list) == 1 && list[0].State == "closing"
	})
	c.SetLinger(0)
	c.Close()
	start := time.Now()
	waitCause(t, s, CauseBackendReset, 1)
	if el := time.Since(start); el >= idle/2 {
		t.Errorf("ended %v after the survivor's reset", el)
	}
}
