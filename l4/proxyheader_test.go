package l4

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/proxyproto"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// A v2 header longer than the first look (a long TLV), arriving in two
// segments, is read whole and no further: the client it names is the
// connection's, and not one of its bytes reaches the backend.
func TestAcceptProxyLongHeaderInTwoParts(t *testing.T) {
	b := startBackend(t, echo)
	s := acceptServer(t, []netip.AddrPort{b.addr}, nil)
	client := carried("203.0.113.44:40044")
	hdr := proxyproto.AppendV2(nil, &proxyproto.Header{
		Command: proxyproto.Proxy, Source: client, Destination: carried("192.0.2.1:80"),
		Authority: bytes.Repeat([]byte("a"), 300),
	}, false)
	if len(hdr) <= proxyproto.V1MaxLen+100 {
		t.Fatalf("a header of %d bytes is not longer than the first look", len(hdr))
	}
	c := dialWith(t, s, hdr[:200])
	testutil.WaitFor(t, 5*time.Second, "the header awaited", func() bool {
		list, _ := s.Connections("fe", 0, 10)
		return len(list) == 1 && list[0].State == "proxy_header"
	})
	if _, err := c.Write(append(hdr[200:], "ping"...)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	c.CloseWrite()
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after the echo: %q, %v; the backend got more than the client's bytes", rest, err)
	}
	f := lastLine(t, s, CauseClientFIN)
	if f["client"] != client.String() || f["bytes_in"] != 4.0 {
		t.Errorf("line %v; want the carried client and 4 bytes in", f)
	}
}

// A client that resets its connection in the middle of its header ends as
// a client reset, before any backend is tried.
func TestAcceptProxyResetInHeader(t *testing.T) {
	b := startBackend(t, echo)
	s := acceptServer(t, []netip.AddrPort{b.addr}, nil)
	c := dialWith(t, s, []byte("PROXY TCP4 203.0.113.1 "))
	testutil.WaitFor(t, 5*time.Second, "the header awaited", func() bool {
		list, _ := s.Connections("fe", 0, 10)
		return len(list) == 1 && list[0].State == "proxy_header"
	})
	c.SetLinger(0)
	c.Close()
	waitCause(t, s, CauseClientReset, 1)
	if n := b.accepted.Load(); n != 0 {
		t.Errorf("the backend got %d connections", n)
	}
}

// connection_rate_per_client judges the client a header carries: a second
// connection of the same carried client within the second is refused,
// whatever proxy it came through.
func TestAcceptProxyRateLimitsTheCarriedClient(t *testing.T) {
	b := startBackend(t, echo)
	s := acceptServer(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.ConnectionRatePerClient(1) })
	hdr := v1Header(carried("203.0.113.50:1000"), carried("192.0.2.1:80"))
	start := time.Now()
	first := dialWith(t, s, append(hdr, 'x'))
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	second := dialWith(t, s, append(hdr, 'y'))
	_, err := io.ReadFull(second, make([]byte, 1))
	if time.Since(start) >= time.Second {
		t.Skip("the machine stalled for a second: the bucket refilled")
	}
	if err == nil {
		t.Fatal("a second connection of the same carried client within the second was served")
	}
	waitCause(t, s, CauseRateLimit, 1)
	// A client another header carries is its own.
	other := dialWith(t, s, append(v1Header(carried("203.0.113.51:1000"), carried("192.0.2.1:80")), 'z'))
	if _, err := io.ReadFull(other, make([]byte, 1)); err != nil {
		t.Fatalf("another carried client: %v", err)
	}
}

// On a listener bound to a wildcard address, the header sent on names the
// address the client connected to, read from the socket, not 0.0.0.0.
func TestSendProxyWildcardListener(t *testing.T) {
	seen := make(chan seenHeader, 1)
	b := startBackend(t, headerEcho(seen))
	s := startServer(t, buildConfig(t, config.New().Workers(2).ConnectionsBuffer(testLogBuffer).
		Frontend("fe").Listen("0.0.0.0:0").SendProxy(config.ProxyV1).LogConnections(config.LogAll), []netip.AddrPort{b.addr}, nil))
	port := s.Addrs("fe")[0].Port()
	nc, err := net.DialTimeout("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	echoThrough(t, c, "through the wildcard")
	h := nextHeader(t, seen)
	if want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port); h.Destination != want || h.Source != addrOf(c) {
		t.Errorf("header %v -> %v; want %v -> %v", h.Source, h.Destination, addrOf(c), want)
	}
}

// A datagram whose v2 header is cut short is dropped and counted as a bad
// header.
func TestUDPAcceptProxyShortHeader(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('u'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.AcceptProxy("127.0.0.1") }))
	fe := s.Addrs("fe")[0]
	h := proxyproto.Header{Command: proxyproto.Proxy, Transport: proxyproto.TransportDgram, Source: carried("203.0.113.5:53000"), Destination: fe}
	full := proxyproto.AppendV2(nil, &h, false)
	c := udpClient(t, fe)
	if _, err := c.Write(full[:len(full)-4]); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the datagram dropped", func() bool { return counters(t, s).Drops[DropProxyHeader] == 1 })
	if got := counters(t, s); got.Active != 0 || b.received.Load() != 0 {
		t.Errorf("%d flows, %d datagrams at the backend; want none", got.Active, b.received.Load())
	}
}
