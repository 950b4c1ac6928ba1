package daemon

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/demo"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

// agreementClients is how many client addresses the agreement test asks
// every instance about.
const agreementClients = 10000

// clientAddr is the i-th client address of the agreement test, in
// 127.100.0.0/16: Linux delivers all of 127.0.0.0/8 to loopback, so a
// client can connect from any of them.
func clientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 100, byte(i >> 8), byte(i)})
}

// backendsByClient connects to front from every client address and
// returns the backend each reached (its address, from the demo greeting).
func backendsByClient(t *testing.T, front netip.AddrPort) []string {
	t.Helper()
	out := make([]string, agreementClients)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				got, err := greetFrom(clientAddr(i), front)
				if err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("client %v: %v", clientAddr(i), err))
					mu.Unlock()
				}
				out[i] = got
			}
		})
	}
	for i := range agreementClients {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d clients failed, first: %s", len(failed), failed[0])
	}
	return out
}

// greetFrom connects from client to front and returns the greeting
// backend's address.
func greetFrom(client netip.Addr, front netip.AddrPort) (string, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(client, 0))}
	c, err := d.Dial("tcp", front.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "hello from demo backend ")), nil
}

// specsOf is the backend specs of servers, named by address.
func specsOf(servers ...*demo.Server) []backend.Spec {
	out := make([]backend.Spec, len(servers))
	for i, s := range servers {
		out[i] = backend.Spec{Name: s.Addr().String(), Address: s.Addr(), Weight: 1}
	}
	return out
}

// TestInstancesAgree runs three instances with the same config (maglev)
// whose backends reach the same set by different roads: the first from
// its config file, in order; the second through runtime changes in
// shuffled orders, with backends that come and go; the third from SRV
// records of a real dnsmasq after an answer with two more backends. Asked
// from 10000 client addresses each, they choose the same backend for
// every one. Then one of the 10 backends is removed everywhere (config,
// SetBackends, DNS): they agree again, every client of the removed
// backend moves (close to a tenth of all) and no other client does. Then
// it comes back: they agree again, and every client is where it was with
// the 10, so only clients moved, all of them to the returning backend.
func TestInstancesAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("60000 connections")
	}
	var servers []*demo.Server
	for i := range 12 {
		servers = append(servers, demoAt(t, fmt.Sprintf("127.0.0.%d", 101+i), 0))
	}
	ten := servers[:10]
	base := func(runtimeDir string) *config.FrontendBuilder {
		return config.New().RuntimeDir(runtimeDir).AdminListen("").
			Frontend("t").Listen("127.0.0.1:0").Strategy(config.StrategyMaglev).HealthInterval(time.Hour)
	}

	// A: the config lists the ten in order.
	dirA := t.TempDir()
	configA := func(set ...*demo.Server) *config.Config {
		f := base(dirA)
		for _, s := range set {
			f.Backend(s.Addr().String(), 1)
		}
		cfg, err := f.Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var nextA configs
	nextA.set(configA(ten...))
	a := runWith(t, configA(ten...), Options{Load: nextA.load})

	// B: starts with five, then the twelve shuffled, then the ten shuffled.
	fb := base(t.TempDir())
	for _, s := range ten[5:] {
		fb.Backend(s.Addr().String(), 1)
	}
	cfgB, err := fb.Build()
	if err != nil {
		t.Fatal(err)
	}
	b := runWith(t, cfgB, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, set := range [][]*demo.Server{servers, ten} {
		specs := specsOf(set...)
		rng.Shuffle(len(specs), func(i, j int) { specs[i], specs[j] = specs[j], specs[i] })
		if _, err := b.SetBackends(t.Context(), "t", specs); err != nil {
			t.Fatal(err)
		}
	}

	// C: SRV records, first of the twelve, then of the ten in reverse.
	srv := func(set ...*demo.Server) realdb.DNSRecords {
		r := realdb.DNSRecords{TTL: 1, Hosts: map[string][]netip.Addr{}}
		for i := len(set) - 1; i >= 0; i-- {
			name := fmt.Sprintf("b%d.test", set[i].Addr().Addr().As4()[3])
			r.Hosts[name] = []netip.Addr{set[i].Addr().Addr()}
			r.SRV = append(r.SRV, realdb.SRVRecord{Name: "_demo._tcp.svc.test", Target: name, Port: int(set[i].Addr().Port()), Weight: 1})
		}
		return r
	}
	dns := realdb.StartDnsmasq(t, srv(servers...))
	cfgC, err := config.New().RuntimeDir(t.TempDir()).AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").Strategy(config.StrategyMaglev).HealthInterval(time.Hour).
		DiscoverDNS(config.DiscoverySRV, "_demo._tcp.svc.test", 0, config.DNSOptions{Resolvers: []netip.AddrPort{dns.Addr},
			Interval: 200 * time.Millisecond, MinInterval: 200 * time.Millisecond}).Build()
	if err != nil {
		t.Fatal(err)
	}
	c := runWith(t, cfgC, Options{})
	testutil.WaitFor(t, 5*time.Second, "C with twelve backends", func() bool { return len(c.srv.Backends("t")) == 12 })
	dns.Set(srv(ten...))
	testutil.WaitFor(t, 10*time.Second, "C with ten backends", func() bool { return len(c.srv.Backends("t")) == 10 })

	instances := []*Daemon{a, b, c}
	ask := func() [][]string {
		out := make([][]string, len(instances))
		for i, d := range instances {
			out[i] = backendsByClient(t, listenAddr(t, d, "t"))
		}
		return out
	}
	agree := func(phase string, got [][]string) {
		t.Helper()
		differ := 0
		for k := range agreementClients {
			if got[0][k] != got[1][k] || got[0][k] != got[2][k] {
				if differ == 0 {
					t.Errorf("%s: client %v reaches %s, %s and %s", phase, clientAddr(k), got[0][k], got[1][k], got[2][k])
				}
				differ++
			}
		}
		t.Logf("%s: the 3 instances agree on %d of %d clients (%.2f%%)", phase, agreementClients-differ, agreementClients,
			100*float64(agreementClients-differ)/agreementClients)
	}
	before := ask()
	agree("10 backends", before)

	// setAll gives every instance the backends of set by its own road: A's
	// config (a reload), B's runtime list (shuffled), C's records.
	setAll := func(set ...*demo.Server) {
		t.Helper()
		nextA.set(configA(set...))
		if out := a.Reload(t.Context()); !out.OK {
			t.Fatalf("reload of A: %v", out.Problems)
		}
		specs := specsOf(set...)
		rng.Shuffle(len(specs), func(i, j int) { specs[i], specs[j] = specs[j], specs[i] })
		if _, err := b.SetBackends(t.Context(), "t", specs); err != nil {
			t.Fatal(err)
		}
		dns.Set(srv(set...))
		testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("C with %d backends", len(set)),
			func() bool { return len(c.srv.Backends("t")) == len(set) })
	}

	// b5 leaves.
	gone := ten[4]
	setAll(append(append([]*demo.Server{}, ten[:4]...), ten[5:]...)...)
	after := ask()
	agree("9 backends", after)

	moved, movedOthers, onGone := 0, 0, 0
	for k := range agreementClients {
		if before[0][k] == gone.Addr().String() {
			onGone++
		}
		if before[0][k] != after[0][k] {
			moved++
			if before[0][k] != gone.Addr().String() {
				movedOthers++
			}
		}
	}
	t.Logf("removing 1 of 10 backends moved %d of %d clients (%.2f%%): the %d of the removed backend and %d others (%.2f%% of all)",
		moved, agreementClients, 100*float64(moved)/agreementClients, onGone, movedOthers, 100*float64(movedOthers)/agreementClients)
	if moved-movedOthers != onGone {
		t.Errorf("%d of the removed backend's %d clients moved", moved-movedOthers, onGone)
	}
	if onGone < agreementClients/10-agreementClients/50 || onGone > agreementClients/10+agreementClients/50 {
		t.Errorf("the removed backend had %d clients, want about a tenth", onGone)
	}
	// Maglev's table is filled by rendezvous hashing: a slot keeps its
	// backend while that backend stays, so nobody else moves.
	if movedOthers != 0 {
		t.Errorf("%d clients of the other backends moved, want 0", movedOthers)
	}

	// b5 comes back.
	setAll(ten...)
	back := ask()
	agree("10 backends again", back)
	returned, strayed, changed := 0, 0, 0
	for k := range agreementClients {
		switch {
		case back[0][k] == after[0][k]:
		case back[0][k] == gone.Addr().String():
			returned++
		default:
			strayed++
		}
		if back[0][k] != before[0][k] {
			if changed == 0 {
				t.Errorf("client %v is on %s, was on %s with the same 10 backends", clientAddr(k), back[0][k], before[0][k])
			}
			changed++
		}
	}
	t.Logf("adding the backend back moved %d clients to it and %d elsewhere; %d differ from the first 10-backend answers",
		returned, strayed, changed)
	if returned != onGone || strayed != 0 || changed != 0 {
		t.Errorf("adding the backend back moved %d clients to it (want its %d), %d elsewhere and changed %d (want 0 and 0)",
			returned, onGone, strayed, changed)
	}
}
