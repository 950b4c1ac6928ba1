package l4

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/proxyproto"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realproxy"
)

// Interop with the PROXY protocol implementations of HAProxy and nginx,
// both ways. Each test starts the real proxy on loopback and skips, naming
// the Debian package, when it is not installed.

// whoBackend is a backend that reads a PROXY header and answers with the
// client it names: "SRC DST\n".
func whoBackend(t testing.TB) *testBackend {
	return startBackend(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		h, err := proxyproto.Read(bufio.NewReader(c))
		if err != nil {
			fmt.Fprintf(c, "error: %v\n", err)
			return
		}
		fmt.Fprintf(c, "%v %v\n", h.Source, h.Destination)
	})
}

// askWho connects to addr, and returns the first line it gets.
func askWho(t testing.TB, addr netip.AddrPort) (line string, client netip.AddrPort) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err = bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer through %v: %q, %v", addr, line, err)
	}
	return strings.TrimSuffix(line, "\n"), addrOf(c)
}

// sendTo starts splicer in front of peer with send_proxy = version (v2 with
// every TLV), and checks that what peer reports back through it names the
// client and splicer's frontend.
func sendTo(t *testing.T, peer netip.AddrPort, version string) {
	t.Helper()
	s := startServer(t, testConfig(t, []netip.AddrPort{peer}, func(f *config.FrontendBuilder) {
		f.SendProxy(version).HealthCheck(config.CheckNone)
		if version == config.ProxyV2 {
			f.SendProxyTLVs(config.ProxyTLVUniqueID, config.ProxyTLVAuthority, config.ProxyTLVCRC32C)
		}
	}))
	for i := 0; i < 3; i++ {
		line, client := askWho(t, s.Addrs("fe")[0])
		if want := fmt.Sprintf("%v %v", client, s.Addrs("fe")[0]); line != want {
			t.Errorf("the peer saw %q, want %q (the client, and splicer's frontend)", line, want)
		}
	}
}

// HAProxy with send-proxy-v2 (checksummed, with a unique ID TLV) in front
// of splicer with accept_proxy: splicer takes HAProxy's client for its own,
// and passes it on in its own header to a backend, which prints it.
func TestInteropHAProxySendsV2(t *testing.T) {
	who := whoBackend(t)
	s := startServer(t, testConfig(t, []netip.AddrPort{who.addr}, func(f *config.FrontendBuilder) {
		f.AcceptProxy("127.0.0.1").SendProxy(config.ProxyV1)
	}))
	front := realproxy.FreePort(t)
	realproxy.HAProxy(t, fmt.Sprintf(`
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend in
    bind %v
    unique-id-format %%ci:%%cp
    default_backend splicer

backend splicer
    server s %v send-proxy-v2 proxy-v2-options crc32c,unique-id
`, front, s.Addrs("fe")[0]), front)
	for i := 0; i < 3; i++ {
		line, client := askWho(t, front)
		if want := fmt.Sprintf("%v %v", client, front); line != want {
			t.Errorf("the backend saw %q, want %q (the client, and HAProxy's frontend)", line, want)
		}
	}
	if got := counters(t, s).Closed; got[CauseProxyInvalid]+got[CauseProxyTimeout]+got[CauseProxyUntrusted] != 0 {
		t.Errorf("headers refused:%s", causeCounts(got))
	}
}

// splicer with send_proxy (v1, and v2 with every TLV) in front of HAProxy
// with accept-proxy: HAProxy takes splicer's client for its own and passes
// it on with send-proxy to a backend, which prints it. HAProxy checks the
// CRC32c splicer computes.
func TestInteropHAProxyAccepts(t *testing.T) {
	for _, version := range []string{config.ProxyV1, config.ProxyV2} {
		t.Run(version, func(t *testing.T) {
			who := whoBackend(t)
			hp := realproxy.FreePort(t)
			realproxy.HAProxy(t, fmt.Sprintf(`
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend in
    bind %v accept-proxy
    default_backend who

backend who
    server w %v send-proxy
`, hp, who.addr), hp)
			sendTo(t, hp, version)
		})
	}
}

// nginx with proxy_protocol on (v1) in front of splicer with accept_proxy,
// which passes the client on in a v2 header.
func TestInteropNginxSends(t *testing.T) {
	who := whoBackend(t)
	s := startServer(t, testConfig(t, []netip.AddrPort{who.addr}, func(f *config.FrontendBuilder) {
		f.AcceptProxy("127.0.0.1").SendProxy(config.ProxyV2)
	}))
	front := realproxy.FreePort(t)
	realproxy.Nginx(t, fmt.Sprintf(`
    server {
        listen %v;
        proxy_pass %v;
        proxy_protocol on;
    }`, front, s.Addrs("fe")[0]), front)
	for i := 0; i < 3; i++ {
		line, client := askWho(t, front)
		if want := fmt.Sprintf("%v %v", client, front); line != want {
			t.Errorf("the backend saw %q, want %q (the client, and nginx's listener)", line, want)
		}
	}
}

// splicer with send_proxy (v1, and v2 with TLVs, which nginx skips) in
// front of nginx listening with proxy_protocol: nginx's
// $proxy_protocol_* variables name splicer's client and frontend.
func TestInteropNginxAccepts(t *testing.T) {
	ng := realproxy.FreePort(t)
	realproxy.Nginx(t, fmt.Sprintf(`
    server {
        listen %v proxy_protocol;
        return "$proxy_protocol_addr:$proxy_protocol_port $proxy_protocol_server_addr:$proxy_protocol_server_port\n";
    }`, ng), ng)
	for _, version := range []string{config.ProxyV1, config.ProxyV2} {
		t.Run(version, func(t *testing.T) {
			sendTo(t, ng, version)
		})
	}
}

// HAProxy's health checks with check-send-proxy reach splicer with a LOCAL
// header, which splicer accepts as a check: the connection's own address.
func TestInteropHAProxyChecks(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) { f.AcceptProxy("127.0.0.1") }))
	front := realproxy.FreePort(t)
	realproxy.HAProxy(t, fmt.Sprintf(`
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout check 2s

frontend in
    bind %v
    default_backend splicer

backend splicer
    option tcp-check
    tcp-check send PING\r\n
    tcp-check expect string PING
    server s %v send-proxy-v2 check check-send-proxy inter 100ms
`, front, s.Addrs("fe")[0]), front)
	// The check's connections are counted as clean ends, no refusal.
	var fc FrontendCounters
	testutil.WaitFor(t, 10*time.Second, "HAProxy's checks served", func() bool {
		fc = counters(t, s)
		return fc.Closed[CauseClientFIN]+fc.Closed[CauseBackendFIN]+fc.Closed[CauseClientReset] >= 3
	})
	if n := fc.Closed[CauseProxyInvalid] + fc.Closed[CauseProxyTimeout]; n != 0 {
		t.Errorf("checks refused:%s", causeCounts(fc.Closed))
	}
	c, err := net.DialTimeout("tcp", front.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("through HAProxy and splicer: %q, %v", buf, err)
	}
}
