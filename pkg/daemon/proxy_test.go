package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/proxyproto"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

// headerCounts is what a backend saw at the start of its connections.
type headerCounts struct {
	// local counts probes (by their LOCAL header), proxied clients,
	// and stray the connections that sent bytes to a backend expecting
	// no header.
	local, proxied, stray atomic.Int64
}

// countingBackend serves TCP on loopback. With wantHeader it reads a PROXY
// header from every connection, counting LOCAL ones (probes) and PROXY
// ones (clients, which get "hello CLIENT\n"); without, it greets the
// connections that wait without a byte (clients) with "hello\n" and counts
// those that send one as stray (a probe's TCP connect never reaches the
// server: the probe resets it before the handshake's last ACK). A
// connection that breaks its expectation is closed at once.
func countingBackend(t *testing.T, wantHeader bool) (netip.AddrPort, *headerCounts) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hc := &headerCounts{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				if !wantHeader {
					// A client sends nothing and waits for the
					// greeting.
					c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
					_, err := br.Peek(1)
					switch {
					case err == nil:
						hc.stray.Add(1)
					case errors.Is(err, os.ErrDeadlineExceeded):
						io.WriteString(c, "hello\n")
					}
					return
				}
				h, err := proxyproto.Read(br)
				switch {
				case err != nil:
				case h.Version == 2 && h.Command == proxyproto.Local:
					hc.local.Add(1)
				case h.Addressed():
					hc.proxied.Add(1)
					fmt.Fprintf(c, "hello %v\n", h.Source)
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort(), hc
}

// The daemon wires send_proxy into the health checks: probes of a backend
// that gets PROXY headers open with a LOCAL one, probes of a backend with
// send_proxy = "none" send nothing; a backend's own send_proxy survives a
// change of the backend list through SetBackends.
func TestSendProxyHealthAndSetBackends(t *testing.T) {
	withHeader, hA := countingBackend(t, true)
	plain, hB := countingBackend(t, false)
	cfg, err := config.New().RuntimeDir(t.TempDir()).AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").SendProxy(config.ProxyV2).HealthInterval(50*time.Millisecond).
		Backend(withHeader.String(), 1).
		Backend(plain.String(), 1).BackendOpts(config.BackendOptions{SendProxy: config.ProxyNone}).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{})
	// The backend without a header is probed too, and no probe of it
	// carries one (it would have reached the server with bytes).
	testutil.WaitFor(t, 5*time.Second, "probes of both backends", func() bool { return hA.local.Load() >= 2 && probeState(d, 1).Probes >= 2 })
	testutil.WaitFor(t, 5*time.Second, "both backends up", func() bool {
		for _, b := range d.srv.Backends("t") {
			if !b.Healthy() {
				return false
			}
		}
		return true
	})

	front := frontAddr(t, d)
	greetings := func() map[string]int {
		seen := map[string]int{}
		for i := 0; i < 4; i++ {
			line := greeting(t, front)
			if line == "" {
				t.Fatal("no greeting through splicer")
			}
			if line != "hello\n" {
				line = "proxied"
			}
			seen[line]++
		}
		return seen
	}
	if g := greetings(); g["proxied"] != 2 || g["hello\n"] != 2 {
		t.Errorf("greetings %v, want 2 from each backend", g)
	}

	specs := []backend.Spec{{Address: withHeader, Weight: 2}, {Address: plain, Weight: 2}}
	if _, err := d.SetBackends(context.Background(), "t", specs); err != nil {
		t.Fatal(err)
	}
	if fc := frontendConfig(d.config(), "t"); fc.Backends[1].SendProxy != config.ProxyNone {
		t.Errorf("backend send_proxy after SetBackends: %q", fc.Backends[1].SendProxy)
	}
	if g := greetings(); g["proxied"] != 2 || g["hello\n"] != 2 {
		t.Errorf("after SetBackends: greetings %v, want 2 from each backend", g)
	}
	if hA.proxied.Load() != 4 {
		t.Errorf("the header backend saw %d clients, want 4", hA.proxied.Load())
	}
	if n := hB.stray.Load(); n != 0 {
		t.Errorf("the backend without a header saw %d connections with bytes (a probe's header?), want 0", n)
	}
}

// headerEcho serves TCP on addr: it reads a PROXY header from each
// connection and answers "v<version> <source>\n", or "no header\n" when
// the connection does not start with one.
func headerEcho(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				h, err := proxyproto.Read(bufio.NewReader(c))
				if err != nil {
					io.WriteString(c, "no header\n")
					return
				}
				fmt.Fprintf(c, "v%d %v\n", h.Version, h.Source.Addr())
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// A backend given by host name with its own send_proxy keeps it for every
// address its name resolves to, the ones found after start included.
func TestHostBackendKeepsItsSendProxy(t *testing.T) {
	first := headerEcho(t, "127.0.0.23:0")
	second := headerEcho(t, fmt.Sprintf("127.0.0.24:%d", first.Port()))
	dns := realdb.StartDnsmasq(t, realdb.DNSRecords{TTL: 1, Hosts: map[string][]netip.Addr{"hdr.test": {first.Addr()}}})
	opts := config.DNSOptions{Resolvers: []netip.AddrPort{dns.Addr}, Timeout: 200 * time.Millisecond,
		Interval: 200 * time.Millisecond, MinInterval: 200 * time.Millisecond}
	cfg, err := config.New().RuntimeDir(t.TempDir()).AdminListen("").DNS(opts).
		Frontend("h").Listen("127.0.0.1:0").HealthInterval(time.Hour).
		Backend(fmt.Sprintf("hdr.test:%d", first.Port()), 1).BackendOpts(config.BackendOptions{Name: "hdr", SendProxy: config.ProxyV1}).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{})
	front := listenAddr(t, d, "h")
	greeting := func() string {
		t.Helper()
		c, err := net.DialTimeout("tcp", front.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("greeting: %v", err)
		}
		return line
	}
	testutil.WaitFor(t, 10*time.Second, "the name's first address, checked", func() bool {
		bs := d.srv.Backends("h")
		return backendNames(d, "h") == "hdr/127.0.0.23="+first.String() && len(bs) == 1 && bs[0].Healthy()
	})
	if got := greeting(); got != "v1 127.0.0.1\n" {
		t.Errorf("through the first address: %q, want %q", got, "v1 127.0.0.1\n")
	}
	dns.Set(realdb.DNSRecords{TTL: 1, Hosts: map[string][]netip.Addr{"hdr.test": {second.Addr()}}})
	// An added backend serves once its first probe passed: on a loaded
	// machine that can come after the name's new address shows.
	testutil.WaitFor(t, 10*time.Second, "the name's new address, checked", func() bool {
		bs := d.srv.Backends("h")
		return backendNames(d, "h") == "hdr/127.0.0.24="+second.String() && len(bs) == 1 && bs[0].Healthy()
	})
	if got := greeting(); got != "v1 127.0.0.1\n" {
		t.Errorf("through the address found later: %q, want %q", got, "v1 127.0.0.1\n")
	}
}
