package l4

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// greeter is a backend that greets every client, then echoes.
func greeter(c net.Conn) {
	defer c.Close()
	io.WriteString(c, "hi\n")
	io.Copy(c, c)
}

// greeted reports whether c receives the greeting within d.
func greeted(c *net.TCPConn, r *bufio.Reader, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	line, err := r.ReadString('\n')
	return err == nil && line == "hi\n"
}

// checkCap opens cap+100 clients against a server whose effective cap is
// cap: exactly cap are served, the rest wait in the kernel backlog (never
// accepted) and are served one by one as served clients leave; none is
// dropped.
func checkCap(t *testing.T, s *Server, b *testBackend, cap int) {
	t.Helper()
	type client struct {
		c *net.TCPConn
		r *bufio.Reader
	}
	var clients []client
	for i := 0; i < cap+100; i++ {
		c := dialFE(t, s)
		clients = append(clients, client{c, bufio.NewReader(c)})
	}
	// Wait until the served clients' greetings ("hi\n") went through.
	testutil.WaitFor(t, 5*time.Second, "the first clients served", func() bool {
		fc, _ := s.Counters("fe")
		return fc.BytesOut == uint64(3*cap)
	})
	served := 0
	for _, cl := range clients {
		if greeted(cl.c, cl.r, 20*time.Millisecond) {
			served++
		}
	}
	if served != cap || b.accepted.Load() != int64(cap) {
		t.Fatalf("%d served, backend accepted %d; want exactly %d", served, b.accepted.Load(), cap)
	}
	fc, _ := s.Counters("fe")
	if fc.Total != uint64(cap) {
		t.Fatalf("frontend accepted %d clients, want %d: the rest must stay in the backlog", fc.Total, cap)
	}
	// Each departure lets exactly one waiter in. Which one is the kernel's
	// choice (each loop's listener has its own backlog), so the client to
	// close next is found among the connections the server holds.
	byAddr := make(map[netip.AddrPort]client)
	for _, cl := range clients {
		byAddr[cl.c.LocalAddr().(*net.TCPAddr).AddrPort()] = cl
	}
	for i := 0; i < len(clients); i++ {
		held, _ := s.Connections("fe", 0, 1000)
		if len(held) == 0 {
			break
		}
		victim := byAddr[held[0].Client]
		delete(byAddr, held[0].Client)
		victim.c.Close()
		want := int64(min(cap+i+1, len(clients)))
		testutil.WaitFor(t, 10*time.Second, "one waiter let in", func() bool { return b.accepted.Load() >= want })
		if got := b.accepted.Load(); got != want {
			t.Fatalf("after %d departures the backend accepted %d, want %d", i+1, got, want)
		}
		testutil.WaitFor(t, 10*time.Second, "the departed connection released", func() bool {
			fc, _ := s.Counters("fe")
			return fc.Active == want-int64(i+1)
		})
	}
	if got := b.accepted.Load(); got != int64(len(clients)) {
		t.Errorf("backend accepted %d clients in all, want every one of %d", got, len(clients))
	}
}

func TestFrontendCapKeepsClientsInBacklog(t *testing.T) {
	b := startBackend(t, greeter)
	cfg := testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) { fb.MaxConnections(4) })
	s := startServer(t, cfg)
	checkCap(t, s, b, 4)
}

func TestGlobalCapKeepsClientsInBacklog(t *testing.T) {
	b := startBackend(t, greeter)
	cfg, err := config.New().Workers(2).MaxConnections(3).Frontend("fe").Listen("127.0.0.1:0").
		Backend(b.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg)
	checkCap(t, s, b, 3)
}
