package l4

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/proxyproto"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// seenHeader is what a header backend read at the start of a connection.
type seenHeader struct {
	h   proxyproto.Header
	err error
}

// headerEcho is a backend handler that reads a PROXY header, reports it
// on seen, then echoes the rest of the stream and passes its FIN on.
func headerEcho(seen chan<- seenHeader) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		// Copy the TLV values: the header's slices are Read's own, but
		// the test reads them on another goroutine.
		seen <- seenHeader{h, err}
		if err != nil {
			return
		}
		io.Copy(c, br)
		c.(*net.TCPConn).CloseWrite()
	}
}

// nextHeader waits for the header a backend saw.
func nextHeader(t testing.TB, seen <-chan seenHeader) proxyproto.Header {
	t.Helper()
	select {
	case s := <-seen:
		if s.err != nil {
			t.Fatalf("backend read no valid PROXY header: %v", s.err)
		}
		return s.h
	case <-time.After(5 * time.Second):
		t.Fatal("backend saw no connection")
	}
	return proxyproto.Header{}
}

// echoThrough sends msg on c, half-closes, and checks that msg comes back
// whole followed by a FIN.
func echoThrough(t testing.TB, c *net.TCPConn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, _, err := exchange(c, []byte(msg))
	if err != nil || got != sha256.Sum256([]byte(msg)) {
		t.Fatalf("echo of %q through splicer: sum %x, %v", msg, got[:4], err)
	}
}

// addrOf is c's own address.
func addrOf(c net.Conn) netip.AddrPort {
	if u, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return u.AddrPort()
	}
	return c.LocalAddr().(*net.TCPAddr).AddrPort()
}

// send_proxy v1 and v2, over IPv4 and IPv6: the backend reads the client's
// address and the frontend's, before any client byte, and the TLVs asked
// for; a backend with send_proxy = "none" gets the stream as it is.
func TestSendProxyRoundTrip(t *testing.T) {
	for _, version := range []string{config.ProxyV1, config.ProxyV2} {
		for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
			t.Run(version+" "+listen, func(t *testing.T) {
				seen := make(chan seenHeader, 4)
				withHeader := startBackend(t, headerEcho(seen))
				plain := startBackend(t, echo)
				fb := config.New().Workers(2).Frontend("fe").Listen(listen).SendProxy(version).
					Strategy(config.StrategyRoundRobin).
					Backend(withHeader.addr.String(), 1).
					Backend(plain.addr.String(), 1).BackendOpts(config.BackendOptions{SendProxy: config.ProxyNone})
				if version == config.ProxyV2 {
					fb.SendProxyTLVs(config.ProxyTLVUniqueID, config.ProxyTLVAuthority, config.ProxyTLVCRC32C)
				}
				cfg, err := fb.Build()
				if err != nil {
					t.Fatal(err)
				}
				s := startServer(t, cfg)
				for i := 0; i < 4; i++ {
					c := dialFE(t, s)
					echoThrough(t, c, fmt.Sprintf("hello %d", i))
				}
				for i := 0; i < 2; i++ {
					h := nextHeader(t, seen)
					c := h
					if c.Version != int(version[1]-'0') || c.Command != proxyproto.Proxy || c.Transport != proxyproto.TransportStream {
						t.Errorf("header %+v", c)
					}
					if c.Destination != s.Addrs("fe")[0] || !c.Source.Addr().IsLoopback() || c.Source.Addr().Is4() != (listen[0] != '[') {
						t.Errorf("header says %v -> %v; frontend is %v", c.Source, c.Destination, s.Addrs("fe")[0])
					}
					if version == config.ProxyV2 {
						if _, err := strconv.ParseUint(string(c.UniqueID), 10, 64); err != nil || string(c.Authority) != "fe" || !c.CRC32C {
							t.Errorf("TLVs: unique id %q, authority %q, crc %v", c.UniqueID, c.Authority, c.CRC32C)
						}
					}
				}
				if withHeader.accepted.Load() != 2 || plain.accepted.Load() != 2 {
					t.Errorf("backends accepted %d and %d, want 2 each", withHeader.accepted.Load(), plain.accepted.Load())
				}
				// The header is splicer's, not the client's: not counted
				// as relayed.
				testutil.WaitFor(t, 5*time.Second, "the connections closed", func() bool { return s.ActiveConnections() == 0 })
				if fc := counters(t, s); fc.BytesIn != 4*uint64(len("hello 0")) {
					t.Errorf("bytes in %d, want %d", fc.BytesIn, 4*len("hello 0"))
				}
			})
		}
	}
}

// The header goes out at once even when the client says nothing: a
// server that speaks first (PostgreSQL's SSL answer aside, MySQL, SMTP)
// waits for it before its greeting.
func TestSendProxyServerSpeaksFirst(t *testing.T) {
	seen := make(chan seenHeader, 1)
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		h, err := proxyproto.Read(bufio.NewReader(c))
		seen <- seenHeader{h, err}
		if err == nil {
			io.WriteString(c, "220 ready\r\n")
		}
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.SendProxy(config.ProxyV2) }))
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "220 ready\r\n" {
		t.Fatalf("greeting %q, %v", line, err)
	}
	if h := nextHeader(t, seen); h.Source != addrOf(c) {
		t.Errorf("header source %v, want %v", h.Source, addrOf(c))
	}
}

// A stream sent at once, before the connect completes, arrives whole
// behind the header, however the writes split it: the header is never
// overtaken and never repeated.
func TestSendProxyIntegrity(t *testing.T) {
	seen := make(chan seenHeader, 8)
	b := startBackend(t, headerEcho(seen))
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.SendProxy(config.ProxyV1) }))
	for i, size := range []int{1, 1000, 64 << 10, 4 << 20} {
		payload := randomBlock(size, uint64(i+1))
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(20 * time.Second))
		got, n, err := exchange(c, payload)
		if err != nil || got != sha256.Sum256(payload) {
			t.Fatalf("%d bytes: got %d back, %v", size, n, err)
		}
		if h := nextHeader(t, seen); h.Source != addrOf(c) {
			t.Errorf("header source %v, want %v", h.Source, addrOf(c))
		}
	}
}

// accept starts a server whose frontend accepts PROXY headers from
// loopback, with mutate applied, in front of backends.
func acceptServer(t testing.TB, backends []netip.AddrPort, mutate func(*config.FrontendBuilder)) *Server {
	t.Helper()
	return startServer(t, testConfig(t, backends, func(f *config.FrontendBuilder) {
		f.AcceptProxy("127.0.0.0/8")
		if mutate != nil {
			mutate(f)
		}
	}))
}

// carried is a client address a header carries.
func carried(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// v1Header and v2Header are headers for a client at src that connected
// to dst.
func v1Header(src, dst netip.AddrPort) []byte { return proxyproto.AppendV1(nil, src, dst) }
func v2Header(src, dst netip.AddrPort) []byte {
	return proxyproto.AppendV2(nil, &proxyproto.Header{Command: proxyproto.Proxy, Source: src, Destination: dst}, false)
}

// accept_proxy: the header is stripped, the stream relayed untouched, and
// the carried address is the client's in the connection list (with the
// sender as via), and in a header sent on.
func TestAcceptProxyCarriesTheClient(t *testing.T) {
	dst := carried("192.0.2.1:5432")
	for _, tc := range []struct {
		name   string
		header []byte
		client netip.AddrPort
	}{
		{"v1 ipv4", v1Header(carried("203.0.113.7:40001"), dst), carried("203.0.113.7:40001")},
		{"v1 ipv6", v1Header(carried("[2001:db8::7]:40002"), carried("[2001:db8::1]:5432")), carried("[2001:db8::7]:40002")},
		{"v2 ipv4", v2Header(carried("203.0.113.8:40003"), dst), carried("203.0.113.8:40003")},
		{"v2 ipv6", v2Header(carried("[2001:db8::8]:40004"), carried("[2001:db8::1]:5432")), carried("[2001:db8::8]:40004")},
		{"v2 ipv4-mapped", v2Header(carried("[::ffff:203.0.113.9]:40005"), carried("[::ffff:192.0.2.1]:5432")), carried("203.0.113.9:40005")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan seenHeader, 1)
			b := startBackend(t, headerEcho(seen))
			s := acceptServer(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.SendProxy(config.ProxyV2) })
			c := dialFE(t, s)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(append(tc.header, "ping"...)); err != nil {
				t.Fatal(err)
			}
			h := nextHeader(t, seen)
			if h.Source.Addr().Unmap() != tc.client.Addr() || h.Source.Port() != tc.client.Port() {
				t.Errorf("header sent on names %v, want %v", h.Source, tc.client)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo %q, %v", buf, err)
			}
			conns, _ := s.Connections("fe", 0, 10)
			if len(conns) != 1 || conns[0].Client != tc.client || conns[0].Via != addrOf(c) || conns[0].State != "relaying" {
				t.Errorf("connection list %+v, want client %v via %v", conns, tc.client, addrOf(c))
			}
		})
	}
}

// A LOCAL header (a health check of the proxy in front) and a v1 UNKNOWN
// line leave the connection's own addresses in place.
func TestAcceptProxyLocal(t *testing.T) {
	b := startBackend(t, echo)
	s := acceptServer(t, []netip.AddrPort{b.addr}, nil)
	for _, hdr := range [][]byte{proxyproto.AppendV2(nil, &proxyproto.Header{Command: proxyproto.Local}, false), []byte("PROXY UNKNOWN\r\n")} {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(append(hdr, 'x'))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		conns, _ := s.Connections("fe", 0, 10)
		if len(conns) != 1 || conns[0].Client != addrOf(c) || conns[0].Via.IsValid() {
			t.Errorf("connection list %+v, want the real client %v", conns, addrOf(c))
		}
		c.Close()
		testutil.WaitFor(t, 5*time.Second, "the connection closed", func() bool { return s.ActiveConnections() == 0 })
	}
}

// dialWith connects to s's frontend and writes hdr.
func dialWith(t testing.TB, s *Server, hdr []byte) *net.TCPConn {
	t.Helper()
	c := dialFE(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	return c
}

// The access list and the per-client limits judge the carried address,
// after the header; the maglev key is the carried address.
func TestAcceptProxyChecksTheCarriedClient(t *testing.T) {
	dst := carried("192.0.2.1:80")
	t.Run("access list", func(t *testing.T) {
		b := startBackend(t, echo)
		s := acceptServer(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.Deny("203.0.113.0/24") })
		denied := dialWith(t, s, v2Header(carried("203.0.113.5:1000"), dst))
		if _, err := io.Copy(io.Discard, denied); !errors.Is(err, errConnReset) {
			t.Errorf("denied client: %v, want a reset", err)
		}
		ok := dialWith(t, s, v2Header(carried("198.51.100.5:1000"), dst))
		echoThrough(t, ok, "allowed")
		got := waitCause(t, s, CauseDenied, 1)
		got[CauseDenied], got[CauseClientFIN] = 0, 0
		if got != [NumCauses]uint64{} {
			t.Errorf("other causes:%s", causeCounts(got))
		}
	})
	t.Run("per-client limit", func(t *testing.T) {
		b := startBackend(t, echo)
		s := acceptServer(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.MaxConnectionsPerClient(1) })
		first := dialWith(t, s, v1Header(carried("203.0.113.5:1000"), dst))
		first.Write([]byte("x"))
		io.ReadFull(first, make([]byte, 1))
		// Same carried address from another connection of the same
		// sender: over the limit. Another carried address: fine.
		second := dialWith(t, s, v1Header(carried("203.0.113.5:1001"), dst))
		if _, err := io.Copy(io.Discard, second); !errors.Is(err, errConnReset) {
			t.Errorf("second connection of one client: %v, want a reset", err)
		}
		other := dialWith(t, s, v1Header(carried("203.0.113.6:1000"), dst))
		echoThrough(t, other, "another client")
		waitCause(t, s, CauseClientLimit, 1)
		first.Close()
		testutil.WaitFor(t, 5*time.Second, "the first client gone", func() bool { return s.ActiveConnections() == 0 })
		// Its slot was released under the carried address.
		again := dialWith(t, s, v1Header(carried("203.0.113.5:1002"), dst))
		echoThrough(t, again, "back again")
	})
	t.Run("maglev", func(t *testing.T) {
		a, b := namedBackend(t, "a"), namedBackend(t, "b")
		s := acceptServer(t, []netip.AddrPort{a.addr, b.addr}, func(f *config.FrontendBuilder) { f.Strategy(config.StrategyMaglev) })
		backendOf := func(client netip.AddrPort) string {
			c := dialWith(t, s, v2Header(client, dst))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			return line
		}
		// Every connection comes from 127.0.0.1; only the carried
		// addresses differ. Each keeps its backend, and they spread.
		seen := map[string]int{}
		for i := 0; i < 16; i++ {
			client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 1000)
			first := backendOf(client)
			client = netip.AddrPortFrom(client.Addr(), 2000)
			if again := backendOf(client); again != first {
				t.Errorf("%v went to %q, then %q", client.Addr(), first, again)
			}
			seen[first]++
		}
		if len(seen) != 2 {
			t.Errorf("16 carried clients all went to %v", seen)
		}
	})
}

// Refusals: each counted under its own cause and nothing else, the client
// reset; an untrusted sender at accept, an invalid header at once, a
// header that stalls at the timeout.
func TestAcceptProxyRefusals(t *testing.T) {
	// A refusal at once must come well before a long timeout; one at the
	// timeout no earlier than a short one.
	const short, long = 300 * time.Millisecond, 5 * time.Second
	dst := carried("192.0.2.1:80")
	v2 := v2Header(carried("203.0.113.5:1000"), dst)
	cases := []struct {
		name   string
		from   string // accept_proxy_from
		send   []byte
		close  bool // half-close after send
		cause  Cause
		atOnce bool // refused before the timeout
	}{
		{"untrusted sender", "10.0.0.0/8", v2, false, CauseProxyUntrusted, true},
		{"no header", "127.0.0.0/8", []byte("GET / HTTP/1.0\r\n\r\n"), false, CauseProxyInvalid, true},
		{"v1 over 107 bytes", "127.0.0.0/8", []byte("PROXY UNKNOWN " + string(make([]byte, 100))), false, CauseProxyInvalid, true},
		{"v1 bad address", "127.0.0.0/8", []byte("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), false, CauseProxyInvalid, true},
		{"v2 truncated addresses", "127.0.0.0/8", func() []byte {
			b := append([]byte(nil), v2[:16]...)
			b[15] = 8 // an INET block needs 12
			return append(b, v2[16:24]...)
		}(), false, CauseProxyInvalid, true},
		{"v2 bad checksum", "127.0.0.0/8", func() []byte {
			b := proxyproto.AppendV2(nil, &proxyproto.Header{Command: proxyproto.Proxy, Source: carried("203.0.113.5:1"), Destination: dst}, true)
			b[len(b)-1] ^= 0xFF
			return b
		}(), false, CauseProxyInvalid, true},
		{"closed inside the header", "127.0.0.0/8", v2[:20], true, CauseProxyInvalid, true},
		{"header never completes", "127.0.0.0/8", v2[:20], false, CauseProxyTimeout, false},
		{"nothing sent", "127.0.0.0/8", nil, false, CauseProxyTimeout, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			timeout := short
			if tc.atOnce {
				timeout = long
			}
			b := startBackend(t, echo)
			s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
				f.AcceptProxy(tc.from).ProxyHeaderTimeout(timeout)
			}))
			start := time.Now()
			var err error
			if c, derr := net.DialTimeout("tcp", s.Addrs("fe")[0].String(), 5*time.Second); derr != nil {
				err = derr // refused at accept, before the handshake completed on this side
			} else {
				c := c.(*net.TCPConn)
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				// A reset that came first fails the write, and the
				// read then sees the end of the stream.
				_, err = c.Write(tc.send)
				if tc.close {
					c.CloseWrite()
				}
				if _, rerr := io.Copy(io.Discard, c); err == nil {
					err = rerr
				}
			}
			took := time.Since(start)
			if !errors.Is(err, errConnReset) {
				t.Errorf("client: %v, want a reset", err)
			}
			switch {
			case tc.atOnce && took > long/2:
				t.Errorf("refused after %v, want at once", took)
			case !tc.atOnce && (took < short || took > short+2*time.Second):
				t.Errorf("refused after %v, want at the %v timeout", took, short)
			}
			got := waitCause(t, s, tc.cause, 1)
			got[tc.cause] = 0
			if got != [NumCauses]uint64{} {
				t.Errorf("other causes:%s", causeCounts(got))
			}
			if n := b.accepted.Load(); n != 0 {
				t.Errorf("backend accepted %d connections", n)
			}
		})
	}
}

// A header dribbled one byte at a time is taken once whole, within the
// timeout; one that takes longer is refused at the timeout. Meanwhile the
// loops serve everyone else without delay.
func TestAcceptProxySlowHeader(t *testing.T) {
	b := startBackend(t, echo)
	const timeout = 2 * time.Second
	s := acceptServer(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.ProxyHeaderTimeout(timeout) })
	hdr := proxyproto.AppendV2(nil, &proxyproto.Header{Command: proxyproto.Proxy, Source: carried("[2001:db8::5]:1000"),
		Destination: carried("[2001:db8::1]:80"), UniqueID: []byte("some id")}, true)
	dribble := func(c *net.TCPConn, gap time.Duration) {
		for i := range hdr {
			if _, err := c.Write(hdr[i : i+1]); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}
	fast := dialFE(t, s)
	fast.SetDeadline(time.Now().Add(10 * time.Second))
	fast.SetNoDelay(true)
	go dribble(fast, timeout/4/time.Duration(len(hdr))) // all of it well within the timeout

	// Timed from before the dial: splicer's timeout runs from the loop's
	// wake-up that accepts the connection, which can come before the
	// client's connect returns.
	slowStart := time.Now()
	slow := dialFE(t, s)
	slow.SetDeadline(time.Now().Add(10 * time.Second))
	slow.SetNoDelay(true)
	go dribble(slow, 3*timeout/time.Duration(len(hdr)))
	slowDone := make(chan time.Duration, 1)
	go func() {
		// The reset reaches the reader, or the dribbling writer first
		// (then the reader sees the end of the stream): either way the
		// read ends when splicer gives up.
		io.Copy(io.Discard, slow)
		slowDone <- time.Since(slowStart)
	}()

	// Other clients, meanwhile, are served at once: nothing waits on a
	// slow header.
	for i := 0; i < 20; i++ {
		start := time.Now()
		c := dialWith(t, s, append(v1Header(carried("198.51.100.1:1000"), carried("192.0.2.1:80")), "ping"...))
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("a client waited %v while headers dribbled in", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Probe(testCtx(t, time.Second)); err != nil {
		t.Errorf("loops: %v", err)
	}
	time.Sleep(timeout / 2) // the fast header is whole by now
	echoThrough(t, fast, "after a slow header")
	select {
	case took := <-slowDone:
		if took < timeout || took > timeout+2*time.Second {
			t.Errorf("slow header refused after %v, want at the %v timeout", took, timeout)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the slow header was never refused")
	}
	got := waitCause(t, s, CauseProxyTimeout, 1)
	if got[CauseProxyInvalid] != 0 {
		t.Errorf("causes:%s", causeCounts(got))
	}
}

// With accept_proxy_optional, a sender outside accept_proxy_from is served
// as it is: its own address, its bytes untouched (a PROXY line included,
// which is its data, not a header).
func TestAcceptProxyOptional(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.AcceptProxy("10.0.0.0/8").AcceptProxyOptional(true)
	}))
	c := dialFE(t, s)
	line := string(v1Header(carried("203.0.113.5:1000"), carried("192.0.2.1:80")))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte(line))
	got := make([]byte, len(line))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != line {
		t.Fatalf("echo %q, %v", got, err)
	}
	conns, _ := s.Connections("fe", 0, 10)
	if len(conns) != 1 || conns[0].Client != addrOf(c) || conns[0].Via.IsValid() {
		t.Errorf("connection list %+v, want the sender itself", conns)
	}
}

// A client that connects and leaves without a byte (a TCP check of the
// proxy in front) cut no header: it ends as a client FIN.
func TestAcceptProxyEmptyConnection(t *testing.T) {
	b := startBackend(t, echo)
	s := acceptServer(t, []netip.AddrPort{b.addr}, nil)
	c := dialFE(t, s)
	c.Close()
	waitCause(t, s, CauseClientFIN, 1)
}

// A reload applies changed send_proxy and accept_proxy settings to new
// connections; a connection open across it keeps its own.
func TestReloadProxySettings(t *testing.T) {
	seen := make(chan seenHeader, 4)
	b := startBackend(t, headerEcho(seen))
	build := func(send string, accept bool) *config.Config {
		return testConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
			f.SendProxy(send)
			if accept {
				f.AcceptProxy("127.0.0.0/8")
			}
		})
	}
	s := startServer(t, build(config.ProxyV1, false))
	open := dialFE(t, s)
	open.SetDeadline(time.Now().Add(5 * time.Second))
	open.Write([]byte("x"))
	io.ReadFull(open, make([]byte, 1))
	if h := nextHeader(t, seen); h.Version != 1 {
		t.Fatalf("before the reload: v%d", h.Version)
	}

	reload(t, s, build(config.ProxyV2, true))
	c := dialWith(t, s, v2Header(carried("203.0.113.5:1000"), carried("192.0.2.1:80")))
	echoThrough(t, c, "after")
	if h := nextHeader(t, seen); h.Version != 2 || h.Source != carried("203.0.113.5:1000") {
		t.Errorf("after the reload: v%d from %v", h.Version, h.Source)
	}
	echoThrough(t, open, "still relaying")
}

// UDP: each datagram from a trusted sender carries a v2 header, stripped
// before the backend; the carried client keys the flow and is listed,
// replies go back to the sender. A datagram without a valid header, or
// from an untrusted sender, is dropped and counted.
func TestUDPAcceptProxy(t *testing.T) {
	var got []byte
	gotc := make(chan []byte, 16)
	b := startUDPBackend(t, func(p []byte) udpReply {
		gotc <- append([]byte(nil), p...)
		return udpReply{data: append([]byte("re:"), p...)}
	})
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.AcceptProxy("127.0.0.1") }))
	fe := s.Addrs("fe")[0]
	c := udpClient(t, fe)
	dgram := func(src string, payload string) []byte {
		h := proxyproto.Header{Command: proxyproto.Proxy, Transport: proxyproto.TransportDgram, Source: carried(src), Destination: fe}
		return append(proxyproto.AppendV2(nil, &h, false), payload...)
	}
	for _, tc := range []struct{ src, payload string }{
		{"203.0.113.5:53000", "one"}, {"203.0.113.5:53000", "two"}, {"[2001:db8::9]:53001", "three"},
	} {
		reply, err := udpExchange(c, dgram(tc.src, tc.payload), 2*time.Second)
		if err != nil || string(reply) != "re:"+tc.payload {
			t.Fatalf("reply %q, %v", reply, err)
		}
		if got = <-gotc; string(got) != tc.payload {
			t.Errorf("backend got %q, want %q", got, tc.payload)
		}
	}
	conns, _ := s.Connections("fe", 0, 10)
	if len(conns) != 2 {
		t.Fatalf("%d flows listed, want 2 (one per carried client): %+v", len(conns), conns)
	}
	for _, f := range conns {
		if f.Via != addrOf(c) || (f.Client != carried("203.0.113.5:53000") && f.Client != carried("[2001:db8::9]:53001")) {
			t.Errorf("flow %+v", f)
		}
	}
	// No header, a v1 header: dropped. LOCAL: the sender is the client.
	for _, p := range [][]byte{[]byte("bare"), append(v1Header(carried("203.0.113.5:1"), fe), "v1"...)} {
		if _, err := udpExchange(c, p, 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("datagram %q: %v, want no reply", p, err)
		}
	}
	if cc := counters(t, s); cc.Drops[DropProxyHeader] != 2 {
		t.Errorf("proxy_header drops %d, want 2", cc.Drops[DropProxyHeader])
	}
	local := append(proxyproto.AppendV2(nil, &proxyproto.Header{Command: proxyproto.Local}, false), "local"...)
	if reply, err := udpExchange(c, local, 2*time.Second); err != nil || string(reply) != "re:local" {
		t.Errorf("LOCAL datagram: %q, %v", reply, err)
	}

	// From a sender outside accept_proxy_from: dropped, or passed as is
	// with accept_proxy_optional.
	for _, optional := range []bool{false, true} {
		s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
			f.AcceptProxy("10.0.0.0/8").AcceptProxyOptional(optional)
		}))
		c := udpClient(t, s.Addrs("fe")[0])
		reply, err := udpExchange(c, []byte("as is"), 300*time.Millisecond)
		cc := counters(t, s)
		switch {
		case optional && (err != nil || string(reply) != "re:as is"):
			t.Errorf("optional: %q, %v", reply, err)
		case !optional && (!errors.Is(err, os.ErrDeadlineExceeded) || cc.Drops[DropProxyUntrusted] != 1):
			t.Errorf("untrusted: %q, %v, %d drops", reply, err, cc.Drops[DropProxyUntrusted])
		}
		if optional {
			<-gotc
		}
	}
}
