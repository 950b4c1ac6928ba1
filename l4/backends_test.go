package l4

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// named writes name and a line break, then echoes.
func named(name string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			c.Close()
			return
		}
		echo(c)
	}
}

// greeting connects to frontend "fe" and returns the first line, "" when
// the connection ends first.
func greetingFrom(t *testing.T, s *Server) (string, *net.TCPConn) {
	t.Helper()
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line, c
}

// TestSetBackends: a frontend that starts with no backend (discovery)
// refuses clients, then serves the backend SetBackends gives it; a switch
// sends new clients to the new backend at once and leaves the old one's
// connections to the caller.
func TestSetBackends(t *testing.T) {
	a, b := startBackend(t, named("A")), startBackend(t, named("B"))
	cfg := testConfig(t, nil, func(fb *config.FrontendBuilder) {
		fb.DiscoverSentinel("m", []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:26379")}, config.DiscoveryOptions{})
	})
	s := startServer(t, cfg)
	if bs := s.Backends("fe"); bs == nil || len(bs) != 0 {
		t.Fatalf("Backends = %v, want empty", bs)
	}
	if line, _ := greetingFrom(t, s); line != "" {
		t.Fatalf("a client got %q with no backend", line)
	}

	added, removed, err := s.SetBackends("fe", []backend.Spec{{Address: a.addr, Weight: 1}})
	if err != nil || len(added) != 1 || len(removed) != 0 {
		t.Fatalf("SetBackends(a) = %v, %v, %v", added, removed, err)
	}
	line, old := greetingFrom(t, s)
	if line != "A\n" {
		t.Fatalf("greeting %q, want A", line)
	}

	added, removed, err = s.SetBackends("fe", []backend.Spec{{Address: b.addr, Weight: 1}})
	if err != nil || len(added) != 1 || len(removed) != 1 || removed[0].Address() != a.addr {
		t.Fatalf("SetBackends(b) = %v, %v, %v", added, removed, err)
	}
	for range 5 {
		if line, _ := greetingFrom(t, s); line != "B\n" {
			t.Fatalf("greeting %q after the switch, want B", line)
		}
	}
	// The old connection is the caller's to close.
	if _, err := old.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(old, make([]byte, 1)); err != nil {
		t.Fatalf("the old backend's connection ended by itself: %v", err)
	}
	if err := s.CloseBackendConnections("fe", removed[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the old connection closed", func() bool { return removed[0].Active() == 0 })
	if got := s.Backends("fe"); len(got) != 1 || got[0] != added[0] {
		t.Fatalf("Backends = %v", got)
	}

	if _, _, err := s.SetBackends("nope", nil); !errors.Is(err, ErrUnknownFrontend) {
		t.Errorf("unknown frontend: %v", err)
	}
	if _, _, err := s.SetBackends("fe", []backend.Spec{{Address: a.addr}}); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("weight 0: %v", err)
	}
}

func TestSetBackendsUDP(t *testing.T) {
	cfg, err := config.New().Workers(1).Frontend("fe").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").
		Backend("127.0.0.1:53", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg)
	if _, _, err := s.SetBackends("fe", nil); !errors.Is(err, ErrStaticBackends) {
		t.Fatalf("SetBackends on udp = %v", err)
	}
}
