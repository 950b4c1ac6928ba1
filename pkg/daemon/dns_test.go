package daemon

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/demo"
	"github.com/splicerlb/splicer/pkg/discovery"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

// demoAt starts a demo backend on ip, port 0 for any.
func demoAt(t *testing.T, ip string, port uint16) *demo.Server {
	t.Helper()
	s, err := demo.Start(netip.AddrPortFrom(netip.MustParseAddr(ip), port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backendNames lists frontend fe's backends as "name=address", sorted.
func backendNames(d *Daemon, fe string) string {
	var out []string
	for _, b := range d.srv.Backends(fe) {
		out = append(out, b.Name()+"="+b.Address().String())
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// lookups returns the DNS counts of frontend fe's first name.
func lookups(d *Daemon, fe string) discovery.LookupStats {
	if s := d.found.dnsStats()[fe]; len(s) > 0 {
		return s[0]
	}
	return discovery.LookupStats{}
}

// heldConn is a client connection through a frontend, with the backend
// that greeted it.
type heldConn struct {
	c       net.Conn
	r       *bufio.Reader
	backend string // the backend's address, from its greeting
}

func hold(t *testing.T, front netip.AddrPort) *heldConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", front.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return &heldConn{c: c, r: r, backend: strings.TrimSpace(strings.TrimPrefix(line, "hello from demo backend "))}
}

// echo reports whether the connection still carries bytes both ways.
func (h *heldConn) echo() error {
	h.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := h.r.ReadString('\n')
	if err == nil && line != "ping\n" {
		err = fmt.Errorf("echoed %q", line)
	}
	return err
}

// TestDNSDiscoverySRV runs a frontend fed by SRV records from a real
// dnsmasq: the backends follow the records within their TTL; a backend
// added joins, one removed drains (its connection runs on) while the kept
// one is the same backend with its connection and counters; a dnsmasq
// that stops answering, then answers NXDOMAIN, leaves the last good set
// serving, each lookup counted.
func TestDNSDiscoverySRV(t *testing.T) {
	b := []*demo.Server{demoAt(t, "127.0.0.11", 0), demoAt(t, "127.0.0.12", 0), demoAt(t, "127.0.0.13", 0)}
	hosts := map[string][]netip.Addr{}
	var srv []realdb.SRVRecord
	for i, s := range b {
		name := fmt.Sprintf("b%d.test", i+1)
		hosts[name] = []netip.Addr{s.Addr().Addr()}
		srv = append(srv, realdb.SRVRecord{Name: "_demo._tcp.svc.test", Target: name, Port: int(s.Addr().Port()), Weight: 1})
	}
	records := func(use ...int) realdb.DNSRecords {
		r := realdb.DNSRecords{TTL: 1, Hosts: hosts}
		for _, i := range use {
			r.SRV = append(r.SRV, srv[i])
		}
		return r
	}
	dns := realdb.StartDnsmasq(t, records(0, 1))
	cfg, err := config.New().RuntimeDir(t.TempDir()).AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").
		DiscoverDNS(config.DiscoverySRV, "_demo._tcp.svc.test", 0, config.DNSOptions{
			Resolvers: []netip.AddrPort{dns.Addr}, Timeout: 200 * time.Millisecond,
			Interval: 200 * time.Millisecond, MinInterval: 200 * time.Millisecond, MaxInterval: 5 * time.Second}).
		HealthInterval(time.Hour).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{})
	want := func(idx ...int) string {
		var out []string
		for _, i := range idx {
			out = append(out, b[i].Addr().String()+"="+b[i].Addr().String())
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	if got := backendNames(d, "t"); got != want(0, 1) {
		t.Fatalf("backends at start: %s, want %s", got, want(0, 1))
	}
	front := listenAddr(t, d, "t")

	// The TTL (1 s) is followed: the name is asked again every second,
	// not every min_interval (200 ms).
	first, since := lookups(d, "t").Succeeded, time.Now()
	testutil.WaitFor(t, 10*time.Second, "two more lookups", func() bool { return lookups(d, "t").Succeeded >= first+2 })
	if took := time.Since(since); took < 1500*time.Millisecond || took > 4*time.Second {
		t.Errorf("two lookups took %v with a TTL of 1 s, want about 2 s", took)
	}

	// One connection on each backend; then b1 leaves the records and b3
	// joins them.
	held := map[string]*heldConn{}
	for len(held) < 2 {
		h := hold(t, front)
		held[h.backend] = h
	}
	kept := findBackend(d.srv.Backends("t"), b[1].Addr().String())
	keptTotal := kept.Stats().Total
	dns.Set(records(1, 2))
	testutil.WaitFor(t, 10*time.Second, "b1 out and b3 in", func() bool { return backendNames(d, "t") == want(1, 2) })
	if now := findBackend(d.srv.Backends("t"), b[1].Addr().String()); now != kept || now.Stats().Total != keptTotal || kept.Stats().Active != 1 {
		t.Errorf("the kept backend changed: same %v, total %d (was %d), active %d", now == kept, now.Stats().Total, keptTotal, kept.Stats().Active)
	}
	for addr, h := range held {
		if err := h.echo(); err != nil {
			t.Errorf("the connection to %s (kept or drained) broke: %v", addr, err)
		}
	}
	for range 4 {
		if h := hold(t, front); h.backend == b[0].Addr().String() {
			t.Errorf("a new client reached %s, which left the records", h.backend)
		}
	}

	// dnsmasq stops: lookups fail, the last good set serves on.
	dns.Stop(9)
	failed := lookups(d, "t").Failed
	testutil.WaitFor(t, 10*time.Second, "failed lookups counted", func() bool { return lookups(d, "t").Failed >= failed+2 })
	if got := backendNames(d, "t"); got != want(1, 2) {
		t.Errorf("backends while DNS is down: %s, want the last good %s", got, want(1, 2))
	}
	if h := hold(t, front); h.backend != b[1].Addr().String() && h.backend != b[2].Addr().String() {
		t.Errorf("a client reached %q while DNS is down", h.backend)
	}

	// dnsmasq answers NXDOMAIN: an empty answer, the last good set serves on.
	dns.Set(records())
	testutil.WaitFor(t, 10*time.Second, "empty answers counted", func() bool { return lookups(d, "t").Empty >= 2 })
	if got := backendNames(d, "t"); got != want(1, 2) {
		t.Errorf("backends after an empty answer: %s, want the last good %s", got, want(1, 2))
	}

	// The records come back: the next answer is the set.
	dns.Set(records(0))
	testutil.WaitFor(t, 10*time.Second, "the records back", func() bool { return backendNames(d, "t") == want(0) })
	st := lookups(d, "t")
	if st.Backends != 1 || time.Since(st.LastSuccess) > 5*time.Second {
		t.Errorf("lookup stats %+v", st)
	}
	out := gatherText(t, d)
	for _, line := range []string{
		`splicer_dns_lookups_total{frontend="t",name="_demo._tcp.svc.test",result="empty",type="srv"}`,
		`splicer_dns_lookups_total{frontend="t",name="_demo._tcp.svc.test",result="failure",type="srv"}`,
		`splicer_dns_lookups_total{frontend="t",name="_demo._tcp.svc.test",result="partial",type="srv"} 0`,
		`splicer_dns_backends{frontend="t",name="_demo._tcp.svc.test",type="srv"} 1`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// TestDNSDiscoveryAAndHosts runs an A-record discovery and a frontend
// mixing an IP backend with one given by host name, on one dnsmasq: an
// address added to the name joins both; a reload that changes the host
// backend's weight replaces its source, and the new weight applies.
func TestDNSDiscoveryAAndHosts(t *testing.T) {
	one := demoAt(t, "127.0.0.21", 0)
	port := one.Addr().Port()
	two := demoAt(t, "127.0.0.22", port)
	static := startDemo(t)
	dns := realdb.StartDnsmasq(t, realdb.DNSRecords{TTL: 1, Hosts: map[string][]netip.Addr{
		"web.test": {one.Addr().Addr()},
	}})
	opts := config.DNSOptions{Resolvers: []netip.AddrPort{dns.Addr}, Timeout: 200 * time.Millisecond,
		Interval: 200 * time.Millisecond, MinInterval: 200 * time.Millisecond}
	runtimeDir := t.TempDir()
	build := func(weight int) *config.Config {
		cfg, err := config.New().RuntimeDir(runtimeDir).AdminListen("").DNS(opts).
			Frontend("a").Listen("127.0.0.1:0").DiscoverDNS(config.DiscoveryA, "web.test", int(port), opts).HealthInterval(time.Hour).
			Frontend("h").Listen("127.0.0.1:0").Backend(static.Addr().String(), 1).
			Backend(fmt.Sprintf("web.test:%d", port), weight).BackendOpts(config.BackendOptions{Name: "web"}).
			HealthInterval(time.Hour).Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var next configs
	cfg := build(2)
	next.set(cfg)
	d := runWith(t, cfg, Options{Load: next.load})
	a1 := one.Addr().String()
	a2 := two.Addr().String()
	if got, want := backendNames(d, "a"), a1+"="+a1; got != want {
		t.Fatalf("frontend a: %s, want %s", got, want)
	}
	hostWant := func(addrs ...string) string {
		out := []string{static.Addr().String() + "=" + static.Addr().String()}
		for _, a := range addrs {
			ap := netip.MustParseAddrPort(a)
			out = append(out, "web/"+ap.Addr().String()+"="+a)
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	if got := backendNames(d, "h"); got != hostWant(a1) {
		t.Fatalf("frontend h: %s, want %s", got, hostWant(a1))
	}
	web := findBackend(d.srv.Backends("h"), "web/127.0.0.21")
	if web.Weight() != 2 {
		t.Errorf("host backend weight %d, want 2", web.Weight())
	}

	dns.Set(realdb.DNSRecords{TTL: 1, Hosts: map[string][]netip.Addr{"web.test": {one.Addr().Addr(), two.Addr().Addr()}}})
	testutil.WaitFor(t, 10*time.Second, "the second address in both frontends", func() bool {
		return backendNames(d, "a") == a1+"="+a1+" "+a2+"="+a2 && backendNames(d, "h") == hostWant(a1, a2)
	})
	if findBackend(d.srv.Backends("h"), "web/127.0.0.21") != web {
		t.Error("the first address's backend was replaced, not kept")
	}

	next.set(build(5))
	if out := d.Reload(t.Context()); !out.OK {
		t.Fatalf("reload: %v", out.Problems)
	}
	if got := backendNames(d, "h"); got != hostWant(a1, a2) {
		t.Fatalf("after the reload: %s, want %s", got, hostWant(a1, a2))
	}
	for _, b := range d.srv.Backends("h") {
		if strings.HasPrefix(b.Name(), "web/") && b.Weight() != 5 {
			t.Errorf("%s: weight %d after the reload, want 5", b.Name(), b.Weight())
		}
	}
	if findBackend(d.srv.Backends("h"), "web/127.0.0.21") != web {
		t.Error("the reload replaced a kept backend")
	}
	if got := len(d.found.dnsStats()); got != 2 {
		t.Errorf("%d DNS sources after the reload, want 2", got)
	}
}

// gatherText is the daemon's metrics in the text format, one sample a
// line, labels sorted.
func gatherText(t *testing.T, d *Daemon) string {
	t.Helper()
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), v)
		}
	}
	return b.String()
}
