package l4

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

func TestACLAdmits(t *testing.T) {
	p := netip.MustParsePrefix
	a := acl{allow: []netip.Prefix{p("127.0.0.0/30"), p("::1/128")}, deny: []netip.Prefix{p("127.0.0.2/32")}}
	for ip, want := range map[string]bool{
		"127.0.0.1": true,  // allowed
		"127.0.0.2": false, // allowed, but denied wins
		"127.0.0.9": false, // not in allow
		"::1":       true,
		"::2":       false,
	} {
		if got := a.admits(netip.MustParseAddr(ip)); got != want {
			t.Errorf("admits(%s) = %v, want %v", ip, got, want)
		}
	}
	if !(&acl{}).admits(netip.MustParseAddr("192.0.2.1")) {
		t.Error("empty access list refused a client")
	}
}

// dialFrom connects to addr from the local address from and reports
// whether a relayed echo came back (false: the client was closed).
// dialFrom connects from the given local address and reports whether the
// connection is served (an echoed ping). A refused client must see a
// reset, at the dial or at the first read: anything else fails the test.
func dialFrom(t *testing.T, from, addr string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, errConnReset) {
		return false // refused before the handshake was seen complete
	}
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); errors.Is(err, errConnReset) {
		// The reset came first; reporting it to the write cleared it, so
		// a read would now see a bare EOF.
		return false
	}
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	switch {
	case err == nil && string(buf) == "ping":
		return true
	case errors.Is(err, errConnReset):
		return false
	default:
		t.Fatalf("dial from %s: read %q, %v; want the echo or a reset", from, buf, err)
		return false
	}
}

func TestAccessListsAtAccept(t *testing.T) {
	b := startBackend(t, echo)
	cfg := testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
		fb.Listen("[::1]:0").Allow("127.0.0.0/30", "::1").Deny("127.0.0.2")
	})
	s := startServer(t, cfg)
	v4, v6 := s.Addrs("fe")[0].String(), s.Addrs("fe")[1].String()
	for _, tc := range []struct {
		from, to string
		served   bool
	}{
		{"127.0.0.1", v4, true},
		{"127.0.0.2", v4, false}, // denied
		{"127.0.0.5", v4, false}, // outside allow
		{"::1", v6, true},
		{"127.0.0.3", v4, true},
	} {
		if got := dialFrom(t, tc.from, tc.to); got != tc.served {
			t.Errorf("client %s: served %v, want %v", tc.from, got, tc.served)
		}
	}
	fc, _ := s.Counters("fe")
	if fc.Denied != 2 || fc.Total != 3 {
		t.Errorf("denied %d, accepted %d; want 2 and 3", fc.Denied, fc.Total)
	}
	if n := b.accepted.Load(); n != 3 {
		t.Errorf("backend saw %d connections, want 3: a denied client reached it", n)
	}
}
