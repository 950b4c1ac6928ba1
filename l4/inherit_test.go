package l4

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// dialLoop connects to addr over and over until stop, counting the
// connects and the failures (refused, reset, no greeting).
type dialLoop struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       chan struct{}
	done       sync.WaitGroup
}

func startDialLoop(t testing.TB, addr netip.AddrPort) *dialLoop {
	d := &dialLoop{stop: make(chan struct{})}
	d.done.Add(1)
	go func() {
		defer d.done.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-d.stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 2)
				_, err = c.Read(buf)
				c.Close()
			}
			if err != nil {
				d.failed.Add(1)
				d.firstErr.CompareAndSwap(nil, err.Error())
				continue
			}
			d.ok.Add(1)
		}
	}()
	t.Cleanup(d.end)
	return d
}

func (d *dialLoop) end() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	d.done.Wait()
}

// TestHandOffKeepsEverySocket hands a running server's sockets to a second
// server, as an upgrade does, while a client connects in a loop: no
// connect fails, the second server serves the very same sockets (plus one
// it binds for its extra loop), and the first one's open connection and
// UDP flow run on until it shuts down.
func TestHandOffKeepsEverySocket(t *testing.T) {
	a := namedBackend(t, "a")
	u := startUDPBackend(t, taggedEcho('e'))
	build := func(workers int) *config.Config {
		cfg, err := config.New().Workers(workers).
			Frontend("fe").Listen("127.0.0.1:0").Backend(a.addr.String(), 1).
			Frontend("dns").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").IdleTimeout(time.Minute).
			Backend(u.addr.String(), 1).Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old, err := NewServer(build(1), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	addr, dns := old.Addrs("fe")[0], old.Addrs("dns")[0]
	inodes := listeningInodes(t, addr)
	_, open, r := greet(t, addr)
	flow := udpClient(t, dns)
	udpRoundTrip(t, flow, "before")

	dials := startDialLoop(t, addr)
	testutil.WaitFor(t, 5*time.Second, "clients served", func() bool { return dials.ok.Load() > 20 })
	socks, err := old.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 2 || socks[0].Frontend == "" {
		t.Fatalf("sockets %+v, want one TCP and one UDP, named by frontend (port 0)", socks)
	}
	next, err := NewServer(build(2), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Inherit(socks); err != nil {
		t.Fatal(err)
	}
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if got := next.Addrs("fe")[0]; got != addr {
		t.Fatalf("the new server listens on %v, want the inherited %v", got, addr)
	}
	old.HandOff()
	served := dials.ok.Load()
	testutil.WaitFor(t, 5*time.Second, "clients served after the hand-off", func() bool { return dials.ok.Load() > served+20 })
	dials.end()
	if n := dials.failed.Load(); n != 0 {
		t.Errorf("%d of %d connects failed across the hand-off; first: %v", n, n+dials.ok.Load(), dials.firstErr.Load())
	}
	after := listeningInodes(t, addr)
	if len(after) != 2 || !slices.Contains(after, inodes[0]) {
		t.Errorf("listening sockets %v after the hand-off, want the inherited %v and one more", after, inodes)
	}
	if c, _ := next.Counters("fe"); c.Total == 0 {
		t.Error("the new server accepted nobody")
	}
	if c, _ := old.Counters("fe"); c.Active != 1 {
		t.Errorf("the old server holds %d connections, want the open one", c.Active)
	}

	// The old server's connection and flow run on; Shutdown waits for the
	// connection, and the flow's idle timeout is a minute: cut it short.
	echoes(t, open, r, "after the hand-off")
	udpRoundTrip(t, flow, "after") // a new flow, in the new server
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		shut <- old.Shutdown(ctx)
	}()
	echoes(t, open, r, "while the old server drains")
	open.Close()
	if err := <-shut; err != nil && !strings.Contains(err.Error(), "0 connections closed, and 1 UDP flows") {
		t.Errorf("old server's shutdown: %v", err)
	}
}

// TestInheritRefusesAWrongSocket gives a UDP socket for a TCP address:
// Start fails, naming it, and nothing stays open.
func TestInheritRefusesAWrongSocket(t *testing.T) {
	a := namedBackend(t, "a")
	fds := openFDs(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New().Workers(2).Frontend("fe").Listen("127.0.0.1:7999").Backend(a.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Inherit([]Socket{{Protocol: config.ProtocolTCP, Listen: netip.MustParseAddrPort("127.0.0.1:7999"), FD: fd}})
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "inherited socket for tcp 127.0.0.1:7999 has type") {
		t.Fatalf("Start: %v", err)
	}
	s.Close()
	if n := openFDs(t); n != fds {
		t.Errorf("%d fds open, %d before", n, fds)
	}
}
