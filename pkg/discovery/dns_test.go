package discovery

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// fakeDNS is a DNS server on loopback (UDP and TCP on one port) answering
// from a table the test sets: records by name and type, an rcode, or
// silence.
type fakeDNS struct {
	addr    netip.AddrPort
	queries atomic.Int64

	mu       sync.Mutex
	answers  map[string][]dnsmessage.Resource // by "name TYPE", lower case
	extra    map[string][]dnsmessage.Resource
	rcode    dnsmessage.RCode
	silent   bool
	slow     map[dnsmessage.Type]time.Duration // query types answered after a delay
	truncate bool                              // answer over UDP with TC set and no records
	forge    bool                              // send an answer with a wrong ID first
	reversed bool                              // list the records in reverse
	// Per name (lower case, absolute), whatever the type: no answer, or
	// this rcode.
	mute   map[string]bool
	rcodes map[string]dnsmessage.RCode
}

func startFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	var (
		pc net.PacketConn
		ln net.Listener
	)
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 10 {
			t.Fatal(err)
		}
	}
	f := &fakeDNS{addr: netip.MustParseAddrPort(pc.LocalAddr().String()),
		answers: map[string][]dnsmessage.Resource{}, extra: map[string][]dnsmessage.Resource{},
		mute: map[string]bool{}, rcodes: map[string]dnsmessage.RCode{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, out := range f.answer(buf[:n], true) {
				pc.WriteTo(out, from)
			}
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var size [2]byte
			if _, err := io.ReadFull(c, size[:]); err == nil {
				msg := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(c, msg); err == nil {
					for _, out := range f.answer(msg, false) {
						c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
					}
				}
			}
			c.Close()
		}
	})
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		wg.Wait()
	})
	return f
}

func key(name string, t dnsmessage.Type) string {
	return strings.ToLower(fqdn(name)) + " " + t.String()
}

// set makes rrs the answer to name's records of type t.
func (f *fakeDNS) set(name string, t dnsmessage.Type, rrs ...dnsmessage.Resource) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[key(name, t)] = rrs
}

// setExtra makes rrs the additional section of answers about name.
func (f *fakeDNS) setExtra(name string, t dnsmessage.Type, rrs ...dnsmessage.Resource) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extra[key(name, t)] = rrs
}

// fail makes every query about name go unanswered (mute) or answered
// with rcode; RCodeSuccess undoes both.
func (f *fakeDNS) fail(name string, mute bool, rcode dnsmessage.RCode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := strings.ToLower(fqdn(name))
	delete(f.mute, n)
	delete(f.rcodes, n)
	switch {
	case mute:
		f.mute[n] = true
	case rcode != dnsmessage.RCodeSuccess:
		f.rcodes[n] = rcode
	}
}

// unset removes name's records of type t: the name's queries of that type
// get NXDOMAIN.
func (f *fakeDNS) unset(name string, t dnsmessage.Type) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.answers, key(name, t))
}

func (f *fakeDNS) configure(change func(f *fakeDNS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// answer returns the datagrams or messages to send for query q.
func (f *fakeDNS) answer(q []byte, udp bool) [][]byte {
	f.queries.Add(1)
	var m dnsmessage.Message
	if m.Unpack(q) != nil || len(m.Questions) != 1 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	qname := strings.ToLower(m.Questions[0].Name.String())
	if f.silent || f.mute[qname] {
		return nil
	}
	if d := f.slow[m.Questions[0].Type]; d > 0 {
		f.mu.Unlock()
		time.Sleep(d) // a slow server, not a test waiting
		f.mu.Lock()
	}
	k := key(m.Questions[0].Name.String(), m.Questions[0].Type)
	r := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: m.ID, Response: true, RecursionAvailable: true, RCode: f.rcode},
		Questions: m.Questions,
	}
	if rc, ok := f.rcodes[qname]; ok {
		r.RCode = rc
	}
	if r.RCode == dnsmessage.RCodeSuccess {
		if _, ok := f.answers[k]; !ok {
			r.RCode = dnsmessage.RCodeNameError
		}
		r.Answers = slices.Clone(f.answers[k])
		r.Additionals = slices.Clone(f.extra[k])
		if f.reversed {
			slices.Reverse(r.Answers)
			slices.Reverse(r.Additionals)
		}
	}
	if udp && f.truncate {
		r.Truncated, r.Answers, r.Additionals = true, nil, nil
	}
	out, err := r.Pack()
	if err != nil {
		panic(err)
	}
	if !f.forge || !udp {
		return [][]byte{out}
	}
	r.ID++
	forged, _ := r.Pack()
	return [][]byte{forged, out}
}

func name(s string) dnsmessage.Name { return dnsmessage.MustNewName(fqdn(s)) }

func srvRR(owner string, ttl uint32, prio, weight, port uint16, target string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: name(owner), Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.SRVResource{Priority: prio, Weight: weight, Port: port, Target: name(target)},
	}
}

func aRR(owner string, ttl uint32, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: name(owner), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()},
	}
}

func aaaaRR(owner string, ttl uint32, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: name(owner), Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(ip).As16()},
	}
}

func cnameRR(owner string, ttl uint32, target string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: name(owner), Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.CNAMEResource{CNAME: name(target)},
	}
}

// dnsSettings are DNS settings asking servers, with short intervals.
func dnsSettings(servers ...netip.AddrPort) config.DNS {
	return config.DNS{Resolvers: servers, Timeout: 300 * time.Millisecond, Interval: time.Second,
		MinInterval: time.Second, MaxInterval: 10 * time.Second}
}

// newDNSSource builds the DNS source of a frontend with discovery d.
func newDNSSource(t *testing.T, d *config.Discovery, backends ...config.Backend) *DNS {
	t.Helper()
	fe := &config.Frontend{Name: "f", Discovery: d, Backends: backends}
	s, err := NewDNS(fe, d.DNS, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// refreshAll asks every name of s once and returns what s would report.
func refreshAll(s *DNS) []config.Backend {
	for _, l := range s.lookups {
		s.refresh(context.Background(), l)
	}
	return s.backends()
}

func backendList(bs []config.Backend) string {
	var out []string
	for _, b := range bs {
		s := b.Name + "@" + b.Address.String() + " w" + strconv.Itoa(b.Weight)
		if b.Backup {
			s += " backup"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// TestDNSSRV: SRV priorities become the two tiers, weights keep their
// proportions within 1..256, targets are resolved from the additional
// section or asked, an address listed twice is one backend, and the
// report is the same whatever the order of the records.
func TestDNSSRV(t *testing.T) {
	f := startFakeDNS(t)
	const svc = "_pg._tcp.db.test"
	f.set(svc, dnsmessage.TypeSRV,
		srvRR(svc, 30, 10, 1000, 5432, "db1.test"),
		srvRR(svc, 30, 10, 3000, 5432, "db2.test"),
		srvRR(svc, 30, 10, 10, 5432, "db2.test"), // db2 again, lighter: the heavier one stays
		srvRR(svc, 30, 20, 0, 5433, "db3.test"),
		srvRR(svc, 30, 10, 5, 5432, "."), // no service there
	)
	f.setExtra(svc, dnsmessage.TypeSRV, aRR("db1.test", 30, "10.0.0.1"), aRR("db2.test", 30, "10.0.0.2"))
	f.set("db3.test", dnsmessage.TypeA) // no A record: AAAA is asked
	f.set("db3.test", dnsmessage.TypeAAAA, aaaaRR("db3.test", 30, "fd00::3"))

	d := &config.Discovery{Type: config.DiscoverySRV, Name: svc, DNS: dnsSettings(f.addr)}
	s := newDNSSource(t, d)
	got := backendList(refreshAll(s))
	want := "10.0.0.1:5432@10.0.0.1:5432 w85, 10.0.0.2:5432@10.0.0.2:5432 w256, [fd00::3]:5433@[fd00::3]:5433 w1 backup"
	if got != want {
		t.Fatalf("backends\n got %s\nwant %s", got, want)
	}
	f.configure(func(f *fakeDNS) { f.reversed = true })
	if again := backendList(refreshAll(newDNSSource(t, d))); again != want {
		t.Fatalf("records in reverse order give\n%s\nnot\n%s", again, want)
	}
}

// TestDNSHosts: a backend given by host name becomes one backend per
// address (A records, through a CNAME chain), named after it, with its
// weight, cap and backup flag; a name with no A record falls back to AAAA.
func TestDNSHosts(t *testing.T) {
	f := startFakeDNS(t)
	f.set("db.test", dnsmessage.TypeA, cnameRR("db.test", 60, "real.db.test"), aRR("real.db.test", 60, "10.0.0.2"), aRR("real.db.test", 60, "10.0.0.1"))
	f.set("v6.test", dnsmessage.TypeA)
	f.set("v6.test", dnsmessage.TypeAAAA, aaaaRR("v6.test", 60, "fd00::6"))
	d := dnsSettings(f.addr)
	fe := &config.Frontend{Name: "f", Backends: []config.Backend{
		{Name: "10.0.0.9:5432", Address: netip.MustParseAddrPort("10.0.0.9:5432"), Weight: 1},
		{Name: "db", Host: "db.test", Address: netip.AddrPortFrom(netip.Addr{}, 5432), Weight: 7, MaxConnections: 9},
		{Name: "v6.test:6000", Host: "v6.test", Address: netip.AddrPortFrom(netip.Addr{}, 6000), Weight: 1, Backup: true},
	}}
	s, err := NewDNS(fe, d, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	got := refreshAll(s)
	want := []config.Backend{
		{Name: "db/10.0.0.1", Address: netip.MustParseAddrPort("10.0.0.1:5432"), Weight: 7, MaxConnections: 9},
		{Name: "db/10.0.0.2", Address: netip.MustParseAddrPort("10.0.0.2:5432"), Weight: 7, MaxConnections: 9},
		{Name: "v6.test:6000/fd00::6", Address: netip.MustParseAddrPort("[fd00::6]:6000"), Weight: 1, Backup: true},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("backends\n got %+v\nwant %+v", got, want)
	}
}

// TestDNSTTL: a good answer is asked again when its TTL runs out, held
// within min_interval and max_interval; a failed one after interval.
func TestDNSTTL(t *testing.T) {
	f := startFakeDNS(t)
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		ttl  uint32
		want time.Duration
	}{{0, time.Second}, {4, 4 * time.Second}, {3600, 10 * time.Second}} {
		f.set("web.test", dnsmessage.TypeA, aRR("web.test", tc.ttl, "10.0.0.1"), aRR("web.test", tc.ttl+1, "10.0.0.2"))
		s := newDNSSource(t, &config.Discovery{Type: config.DiscoveryA, Name: "web.test", Port: 80, DNS: dnsSettings(f.addr)})
		s.now = func() time.Time { return now }
		refreshAll(s)
		if got := s.lookups[0].due.Sub(now); got != tc.want {
			t.Errorf("TTL %d: asked again after %v, want %v", tc.ttl, got, tc.want)
		}
	}
}

// TestDNSKeepsLastGood: a resolver that stops answering, answers
// SERVFAIL, NXDOMAIN or no record leaves the last good backends in place,
// each counted; the next good answer replaces them.
func TestDNSKeepsLastGood(t *testing.T) {
	f := startFakeDNS(t)
	f.set("web.test", dnsmessage.TypeA, aRR("web.test", 5, "10.0.0.1"))
	s := newDNSSource(t, &config.Discovery{Type: config.DiscoveryA, Name: "web.test", Port: 80, DNS: dnsSettings(f.addr)})
	good := refreshAll(s)
	if len(good) != 1 {
		t.Fatalf("first answer: %v", good)
	}
	for _, tc := range []struct {
		name   string
		change func(f *fakeDNS)
	}{
		{"silence", func(f *fakeDNS) { f.silent = true }},
		{"servfail", func(f *fakeDNS) { f.silent, f.rcode = false, dnsmessage.RCodeServerFailure }},
		{"nxdomain", func(f *fakeDNS) {
			f.rcode = dnsmessage.RCodeSuccess
			delete(f.answers, key("web.test", dnsmessage.TypeA))
		}},
		{"no record", func(f *fakeDNS) { f.answers[key("web.test", dnsmessage.TypeA)] = nil }},
	} {
		f.configure(tc.change)
		if got := refreshAll(s); !slices.Equal(got, good) {
			t.Fatalf("%s: backends %v, want the last good %v", tc.name, got, good)
		}
	}
	st := s.Stats()[0]
	if st.Succeeded != 1 || st.Failed != 2 || st.Empty != 2 || st.Backends != 1 || st.LastSuccess.IsZero() {
		t.Fatalf("stats %+v: want 1 success, 2 failures, 2 empty answers, 1 backend", st)
	}
	f.set("web.test", dnsmessage.TypeA, aRR("web.test", 5, "10.0.0.2"))
	if got := refreshAll(s); len(got) != 1 || got[0].Address != netip.MustParseAddrPort("10.0.0.2:80") {
		t.Fatalf("after recovery: %v", got)
	}
}

// TestDNSTransport: a truncated UDP answer is asked again over TCP, an
// answer with a wrong ID is ignored, and a resolver that fails sends the
// question on to the next.
func TestDNSTransport(t *testing.T) {
	bad, good := startFakeDNS(t), startFakeDNS(t)
	bad.configure(func(f *fakeDNS) { f.rcode = dnsmessage.RCodeRefused })
	good.set("web.test", dnsmessage.TypeA, aRR("web.test", 5, "10.0.0.1"))
	good.configure(func(f *fakeDNS) { f.truncate, f.forge = true, true })
	s := newDNSSource(t, &config.Discovery{Type: config.DiscoveryA, Name: "web.test", Port: 80, DNS: dnsSettings(bad.addr, good.addr)})
	if got := refreshAll(s); len(got) != 1 || got[0].Address != netip.MustParseAddrPort("10.0.0.1:80") {
		t.Fatalf("backends %v", got)
	}
	if n := good.queries.Load(); n != 2 {
		t.Errorf("%d queries to the good resolver, want 2 (UDP, then TCP)", n)
	}
}

// TestDNSLookupBudget: an SRV answer with forty targets to ask for, of
// which all but the first go unanswered, would hold the source for forty
// query timeouts; the lookup ends at its budget (lowered here from twenty
// timeouts to five, so that the timeout can leave a loaded machine room).
// The target that resolved applies, the others fail (those asked after the
// budget ran out say so) and, never resolved, give no backend. When no
// target answers at all, the lookup fails with the budget said, and the
// last good backends serve on.
func TestDNSLookupBudget(t *testing.T) {
	f := startFakeDNS(t)
	const svc = "_pg._tcp.db.test"
	f.set(svc, dnsmessage.TypeSRV, srvRR(svc, 5, 10, 1, 5432, "db0.test"))
	f.set("db0.test", dnsmessage.TypeA, aRR("db0.test", 5, "10.0.0.1"))
	d := &config.Discovery{Type: config.DiscoverySRV, Name: svc, DNS: dnsSettings(f.addr)}
	d.DNS.Timeout = 400 * time.Millisecond
	log := &syncLog{}
	s, err := NewDNS(&config.Frontend{Name: "f", Discovery: d}, d.DNS, zerolog.New(log).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	s.budget = 5
	const first = "10.0.0.1:5432@10.0.0.1:5432 w1"
	if got := backendList(refreshAll(s)); got != first {
		t.Fatalf("first answer: %s", got)
	}
	var rrs []dnsmessage.Resource
	for i := range 40 {
		target := fmt.Sprintf("db%d.test", i)
		rrs = append(rrs, srvRR(svc, 5, 10, 1, 5432, target))
		f.set(target, dnsmessage.TypeA, aRR(target, 5, fmt.Sprintf("10.0.0.%d", i+1)))
		if i > 0 {
			f.fail(target, true, 0)
		}
	}
	f.set(svc, dnsmessage.TypeSRV, rrs...)
	// 5 timeouts of 400 ms, and room for a loaded machine.
	budget := 5 * d.DNS.Timeout
	const over = "the lookup took longer than 2s (5 times dns.timeout)"
	for _, tc := range []struct {
		name, failure string
		stats         [4]uint64 // succeeded, partial, failed, empty
	}{
		{"db0 answering", "DNS lookup failed for some SRV targets", [4]uint64{1, 1, 0, 0}},
		{"no target answering", "DNS lookup failed: the last good backends serve on", [4]uint64{1, 1, 1, 0}},
	} {
		if tc.name == "no target answering" {
			f.fail("db0.test", true, 0)
		}
		start := time.Now()
		got := backendList(refreshAll(s))
		took := time.Since(start)
		if got != first {
			t.Errorf("%s: after the overlong lookup: %s, want %s", tc.name, got, first)
		}
		if took < budget || took > budget+300*time.Millisecond {
			t.Errorf("%s: the lookup took %v, want %v and a little", tc.name, took, budget)
		}
		if line := log.find(tc.failure); !strings.Contains(line, over) {
			t.Errorf("%s: log line %q does not say the lookup ran out of time", tc.name, line)
		}
		if st := s.Stats()[0]; [4]uint64{st.Succeeded, st.Partial, st.Failed, st.Empty} != tc.stats {
			t.Errorf("%s: stats %+v, want succeeded, partial, failed, empty %v", tc.name, st, tc.stats)
		}
	}
}

// syncLog collects log lines from any goroutine.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

// find returns the last line holding s, "" if none.
func (l *syncLog) find(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.lines) - 1; i >= 0; i-- {
		if strings.Contains(l.lines[i], s) {
			return l.lines[i]
		}
	}
	return ""
}

// count returns how many lines hold s.
func (l *syncLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// TestDNSRun: Run reports once every name was asked, then each change,
// and Ready closes at the first report.
func TestDNSRun(t *testing.T) {
	f := startFakeDNS(t)
	f.set("web.test", dnsmessage.TypeA, aRR("web.test", 0, "10.0.0.1"))
	d := &config.Discovery{Type: config.DiscoveryA, Name: "web.test", Port: 80, DNS: dnsSettings(f.addr)}
	d.DNS.MinInterval = 100 * time.Millisecond
	s := newDNSSource(t, d)
	var mu sync.Mutex
	var reports [][]config.Backend
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(bs []config.Backend) {
			mu.Lock()
			reports = append(reports, bs)
			mu.Unlock()
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	f.set("web.test", dnsmessage.TypeA, aRR("web.test", 0, "10.0.0.1"), aRR("web.test", 0, "10.0.0.2"))
	last := func() []config.Backend {
		mu.Lock()
		defer mu.Unlock()
		return reports[len(reports)-1]
	}
	testutil.WaitFor(t, 10*time.Second, "the new address reported", func() bool { return len(last()) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 2 {
		t.Errorf("%d reports, want 2 (the first answer, then the change)", len(reports))
	}
}
