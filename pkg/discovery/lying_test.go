package discovery

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// The tests of this file hold discovery to DNS servers and Sentinels that
// misbehave: a DNS server whose UDP answers are truncated and whose TCP
// side then fails in every way a connection can, and Sentinels that hang
// up or answer out of shape at each step of a watch.

// TestNewDNSResolvers: without dns.resolvers the source reads the
// nameservers of resolv.conf, and refuses to start when there is none to
// ask, saying why; a frontend without names to resolve has no source.
func TestNewDNSResolvers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	saved := resolvConf
	t.Cleanup(func() { resolvConf = saved })
	fe := &config.Frontend{Name: "f", Backends: []config.Backend{
		{Name: "db", Host: "db.test", Address: netip.AddrPortFrom(netip.Addr{}, 5432), Weight: 1},
	}}

	resolvConf = write("two", "# generated\nsearch example.org\nnameserver 127.0.0.53\nnameserver ::1\nnameserver bogus\n")
	s, err := NewDNS(fe, config.DNS{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs("127.0.0.53:53", "[::1]:53"); !slices.Equal(s.res.servers, want) {
		t.Errorf("servers %v, want %v", s.res.servers, want)
	}

	resolvConf = write("none", "search example.org\n")
	if _, err := NewSource(fe, config.DNS{}, zerolog.Nop()); err == nil || err.Error() != errNoResolver.Error() {
		t.Errorf("resolv.conf without nameserver: %v, want %q", err, errNoResolver)
	}
	resolvConf = filepath.Join(dir, "missing")
	want := "dns.resolvers: none set, and open " + resolvConf + ": no such file or directory"
	if _, err := NewSource(fe, config.DNS{}, zerolog.Nop()); err == nil || err.Error() != want {
		t.Errorf("missing resolv.conf: %v, want %q", err, want)
	}

	static := &config.Frontend{Name: "f", Backends: []config.Backend{
		{Name: "a", Address: netip.MustParseAddrPort("10.0.0.1:80"), Weight: 1},
	}}
	if src, err := NewSource(static, config.DNS{}, zerolog.Nop()); src != nil || err != nil {
		t.Errorf("a frontend of addresses only has source %v, %v; want none", src, err)
	}
	if _, err := NewSentinel(&config.Discovery{Master: "m"}, zerolog.Nop()); err == nil ||
		err.Error() != "discovery: no Sentinel address or no master name" {
		t.Errorf("Sentinel discovery without an address: %v", err)
	}
}

// truncatingDNS is a DNS server whose UDP side answers every query empty
// and truncated, which sends the client to TCP on the same port; there
// tcp handles each connection once its query is read (the server closes
// it afterwards). With a nil tcp the port refuses TCP connections.
func truncatingDNS(t *testing.T, tcp func(c *net.TCPConn, q dnsmessage.Message)) netip.AddrPort {
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
		port := pc.LocalAddr().(*net.UDPAddr).Port
		if tcp != nil {
			ln, err = net.Listen("tcp", pc.LocalAddr().String())
		} else {
			err = holdTCP(t, port) // bound, not listening: connections are refused
		}
		if err == nil {
			break
		}
		pc.Close()
		if try == 10 {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			r := dnsmessage.Message{Header: dnsmessage.Header{ID: m.ID, Response: true, Truncated: true}, Questions: m.Questions}
			out, _ := r.Pack()
			pc.WriteTo(out, from)
		}
	})
	if ln != nil {
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				var size [2]byte
				if _, err := io.ReadFull(c, size[:]); err == nil {
					msg := make([]byte, binary.BigEndian.Uint16(size[:]))
					var m dnsmessage.Message
					if _, err := io.ReadFull(c, msg); err == nil && m.Unpack(msg) == nil {
						tcp(c.(*net.TCPConn), m)
					}
				}
				c.Close()
			}
		})
	}
	t.Cleanup(func() {
		pc.Close()
		if ln != nil {
			ln.Close()
		}
		wg.Wait()
	})
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// holdTCP binds a TCP socket to 127.0.0.1:port without listening, for the
// length of the test.
func holdTCP(t *testing.T, port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		unix.Close(fd)
		return err
	}
	t.Cleanup(func() { unix.Close(fd) })
	return nil
}

// frame prefixes a DNS message with its length, as over TCP.
func frame(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

// TestDNSTCPFallbackFailures: when the UDP answer is truncated and the
// TCP exchange then fails, the server's error says what TCP did.
func TestDNSTCPFallbackFailures(t *testing.T) {
	answer := func(id uint16, q dnsmessage.Message) []byte {
		r := dnsmessage.Message{Header: dnsmessage.Header{ID: id, Response: true}, Questions: q.Questions,
			Answers: []dnsmessage.Resource{aRR("web.test", 5, "10.0.0.1")}}
		out, err := r.Pack()
		if err != nil {
			panic(err)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		tcp     func(c *net.TCPConn, q dnsmessage.Message)
		timeout time.Duration
		want    string
	}{
		{"refused", nil, 0, "truncated over UDP, and over TCP: connection refused (no DNS server on that port)"},
		{"closed without an answer", func(*net.TCPConn, dnsmessage.Message) {}, 0, "over TCP: EOF"},
		{"answer cut short", func(c *net.TCPConn, q dnsmessage.Message) {
			c.Write(frame(answer(q.ID, q))[:20])
		}, 0, "over TCP: unexpected EOF"},
		{"reset", func(c *net.TCPConn, _ dnsmessage.Message) { c.SetLinger(0) }, 0,
			"over TCP: read: connection reset by peer"},
		{"not a DNS message", func(c *net.TCPConn, _ dnsmessage.Message) { c.Write(frame([]byte("HTTP/1.1"))) }, 0,
			"over TCP: malformed answer: unpacking header: authorities: insufficient data for base length type"},
		{"answer to another query", func(c *net.TCPConn, q dnsmessage.Message) { c.Write(frame(answer(q.ID+1, q))) }, 0,
			"over TCP: the answer is not to the question asked"},
		{"silent", func(c *net.TCPConn, _ dnsmessage.Message) { io.Copy(io.Discard, c) }, 200 * time.Millisecond,
			"over TCP: no answer (timeout)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := truncatingDNS(t, tc.tcp)
			r := resolver{servers: []netip.AddrPort{addr}, timeout: 5 * time.Second}
			if tc.timeout > 0 {
				r.timeout = tc.timeout
			}
			rep, err := r.query(context.Background(), "web.test", dnsmessage.TypeA)
			if want := addr.String() + ": " + tc.want; err == nil || err.Error() != want {
				t.Fatalf("query = %+v, %v\nwant error %q", rep, err, want)
			}
		})
	}
}

// TestDNSNameTooLong: a name longer than DNS can carry (config refuses
// one, this is the resolver's own guard) is refused before any query.
func TestDNSNameTooLong(t *testing.T) {
	f := startFakeDNS(t)
	r := resolver{servers: []netip.AddrPort{f.addr}, timeout: time.Second}
	long := strings.Repeat("a.", 128) + "test"
	_, err := r.query(context.Background(), long, dnsmessage.TypeA)
	if want := fmt.Sprintf("name %q: insufficient data for calculated length type", long); err == nil || err.Error() != want {
		t.Fatalf("query = %v, want %q", err, want)
	}
	if n := f.queries.Load(); n != 0 {
		t.Fatalf("%d queries sent for a name DNS cannot carry", n)
	}
}

// TestDNSAddressesCleaned: AAAA discovery, and SRV targets, give one
// backend per address: an address listed twice is one backend, and the
// unspecified address (:: or 0.0.0.0, which a broken zone may hold) none.
func TestDNSAddressesCleaned(t *testing.T) {
	f := startFakeDNS(t)
	f.set("web.test", dnsmessage.TypeAAAA, aaaaRR("web.test", 5, "fd00::1"), aaaaRR("web.test", 5, "::"), aaaaRR("web.test", 5, "fd00::1"))
	s := newDNSSource(t, &config.Discovery{Type: config.DiscoveryAAAA, Name: "web.test", Port: 80, DNS: dnsSettings(f.addr)})
	if got, want := backendList(refreshAll(s)), "[fd00::1]:80@[fd00::1]:80 w1"; got != want {
		t.Errorf("AAAA backends %s, want %s", got, want)
	}
	const svc = "_pg._tcp.db.test"
	f.set(svc, dnsmessage.TypeSRV, srvRR(svc, 5, 10, 10, 5432, "a.test"), srvRR(svc, 5, 10, 10, 5432, "zero.test"))
	f.setExtra(svc, dnsmessage.TypeSRV, aRR("a.test", 5, "10.0.0.1"), aRR("zero.test", 5, "0.0.0.0"))
	s = newDNSSource(t, &config.Discovery{Type: config.DiscoverySRV, Name: svc, DNS: dnsSettings(f.addr)})
	if got, want := backendList(refreshAll(s)), "10.0.0.1:5432@10.0.0.1:5432 w10"; got != want {
		t.Errorf("SRV backends %s, want %s", got, want)
	}
}

// TestDNSFoundBounded: a lookup gives at most maxFound backends, however
// many addresses the answer holds; an SRV lookup stops resolving targets
// once it has that many.
func TestDNSFoundBounded(t *testing.T) {
	f := startFakeDNS(t)
	var many []dnsmessage.Resource
	for i := range maxFound + 1 {
		many = append(many, aRR("web.test", 5, fmt.Sprintf("10.0.%d.%d", i/250, 1+i%250)))
	}
	f.set("web.test", dnsmessage.TypeA, many...)
	s := newDNSSource(t, &config.Discovery{Type: config.DiscoveryA, Name: "web.test", Port: 80, DNS: dnsSettings(f.addr)})
	if got := refreshAll(s); len(got) != maxFound {
		t.Errorf("A lookup of %d addresses gave %d backends, want %d", len(many), len(got), maxFound)
	}

	const svc = "_pg._tcp.db.test"
	f.set(svc, dnsmessage.TypeSRV, srvRR(svc, 5, 10, 10, 5432, "web.test"), srvRR(svc, 5, 10, 10, 5432, "other.test"))
	f.setExtra(svc, dnsmessage.TypeSRV, many...)
	f.set("other.test", dnsmessage.TypeA, aRR("other.test", 5, "10.9.9.9"))
	s = newDNSSource(t, &config.Discovery{Type: config.DiscoverySRV, Name: svc, DNS: dnsSettings(f.addr)})
	before := f.queries.Load()
	got := refreshAll(s)
	other := slices.ContainsFunc(got, func(b config.Backend) bool { return b.Address.Addr() == netip.MustParseAddr("10.9.9.9") })
	if len(got) != maxFound || other {
		t.Errorf("SRV lookup gave %d backends (other.test's among them: %v), want %d, all of the first target", len(got), other, maxFound)
	}
	if n := f.queries.Load() - before; n != 1 {
		t.Errorf("%d queries, want 1 (the SRV query; the second target is not asked)", n)
	}
}

// TestDNSRunPerNameTTL: each name of a source is asked again on its own
// TTL: a change under a short-lived name is reported while a long-lived
// one keeps its answer.
func TestDNSRunPerNameTTL(t *testing.T) {
	f := startFakeDNS(t)
	f.set("slow.test", dnsmessage.TypeA, aRR("slow.test", 3600, "10.0.0.1"))
	f.set("fast.test", dnsmessage.TypeA, aRR("fast.test", 0, "10.0.0.2"))
	d := dnsSettings(f.addr)
	d.MinInterval, d.MaxInterval = 50*time.Millisecond, time.Hour
	fe := &config.Frontend{Name: "f", Backends: []config.Backend{
		{Name: "slow", Host: "slow.test", Address: netip.AddrPortFrom(netip.Addr{}, 80), Weight: 1},
		{Name: "fast", Host: "fast.test", Address: netip.AddrPortFrom(netip.Addr{}, 80), Weight: 1},
	}}
	s, err := NewDNS(fe, d, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := ""
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(bs []config.Backend) {
			mu.Lock()
			last = backendList(bs)
			mu.Unlock()
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	reported := func(want string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return last == want
		}
	}
	testutil.WaitFor(t, 10*time.Second, "both names", reported("fast/10.0.0.2@10.0.0.2:80 w1, slow/10.0.0.1@10.0.0.1:80 w1"))
	f.set("slow.test", dnsmessage.TypeA, aRR("slow.test", 3600, "10.0.0.11"))
	f.set("fast.test", dnsmessage.TypeA, aRR("fast.test", 0, "10.0.0.12"))
	testutil.WaitFor(t, 10*time.Second, "the short-lived name's change, not the other's",
		reported("fast/10.0.0.12@10.0.0.12:80 w1, slow/10.0.0.1@10.0.0.1:80 w1"))
}

// TestDNSRunStoppedDuringFirstLookup: a source stopped while its first
// lookup waits on a silent server returns without reporting anything (an
// empty list would empty the frontend) and never becomes ready.
func TestDNSRunStoppedDuringFirstLookup(t *testing.T) {
	f := startFakeDNS(t)
	f.configure(func(f *fakeDNS) { f.silent = true })
	s := newDNSSource(t, &config.Discovery{Type: config.DiscoveryA, Name: "web.test", Port: 80, DNS: dnsSettings(f.addr)})
	ctx, cancel := context.WithCancel(context.Background())
	reports := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func([]config.Backend) { reports++ })
	}()
	testutil.WaitFor(t, 10*time.Second, "the first query", func() bool { return f.queries.Load() > 0 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	select {
	case <-s.Ready():
		t.Error("ready without a lookup having ended")
	default:
	}
	if reports != 0 {
		t.Errorf("%d reports from a source stopped during its first lookup", reports)
	}
}

// sentinelStep is one step of a scripted Sentinel connection: read a
// command whose words are cmd, and write reply; hangUp closes the
// connection.
type sentinelStep struct{ cmd, reply string }

// hangUp is the step that closes a scripted connection.
var hangUp = sentinelStep{}

// scriptedSentinel serves the i-th connection it accepts with scripts[i]
// and then keeps it open until the client hangs up. A nil script, or a
// connection past the last script, reads the first command and hangs up
// (having read what the client sent, so the client reads an end of
// stream, never a reset).
func scriptedSentinel(t *testing.T, scripts ...[]sentinelStep) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var script []sentinelStep
			if i < len(scripts) {
				script = scripts[i]
			}
			wg.Go(func() {
				defer c.Close()
				r := resp.NewReader(c)
				if script == nil {
					r.Read()
					return
				}
				for _, st := range script {
					if st == hangUp {
						return
					}
					v, err := r.Read()
					if err != nil {
						return
					}
					var words []string
					for _, a := range v.Array {
						words = append(words, a.Str)
					}
					if got := strings.Join(words, " "); got != st.cmd {
						t.Errorf("connection %d: command %q, want %q", i, got, st.cmd)
						return
					}
					if _, err := io.WriteString(c, st.reply); err != nil {
						return
					}
				}
				io.Copy(io.Discard, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// bulks is a RESP array of bulk strings.
func bulks(words ...string) string {
	s := fmt.Sprintf("*%d\r\n", len(words))
	for _, w := range words {
		s += fmt.Sprintf("$%d\r\n%s\r\n", len(w), w)
	}
	return s
}

// TestSentinelWatchFailures: each way a Sentinel can fail a watch (hang
// up, answer out of shape, name an address that is none) ends the watch
// with an error saying what it did, which Run logs before it moves on to
// the next Sentinel; a replica list is read whatever the Sentinel's
// version calls it.
func TestSentinelWatchFailures(t *testing.T) {
	subscribed := "*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n"
	sub := []sentinelStep{{"PSUBSCRIBE *", subscribed}}
	askMaster := func(reply string) []sentinelStep {
		return []sentinelStep{{"SENTINEL get-master-addr-by-name m", reply}}
	}
	askReplicas := func(reply string) []sentinelStep {
		return []sentinelStep{{"SENTINEL replicas m", reply}}
	}
	replica := func(ip, port string) string { return bulks("ip", ip, "port", port, "flags", "slave") }
	event := func(channel, payload string) string { return bulks("pmessage", "*", channel, payload) }
	for _, tc := range []struct {
		name     string
		replicas bool
		scripts  [][]sentinelStep
		want     string
		reported []netip.AddrPort // what the watch published before it failed
	}{
		{name: "hangs up at the subscription", scripts: [][]sentinelStep{nil},
			want: "subscribe: EOF"},
		{name: "subscription refused", scripts: [][]sentinelStep{{{"PSUBSCRIBE *", "-ERR unknown command 'PSUBSCRIBE'\r\n"}}},
			want: `subscribe answered "-ERR unknown command 'PSUBSCRIBE'"`},
		{name: "hangs up at the question", scripts: [][]sentinelStep{sub, nil},
			want: "EOF"},
		{name: "master not a pair", scripts: [][]sentinelStep{sub, askMaster("+OK\r\n")},
			want: `get-master-addr-by-name answered "OK"`},
		{name: "master on port 0", scripts: [][]sentinelStep{sub, askMaster(bulks("10.0.0.1", "0"))},
			want: `port "0"`},
		{name: "master without a host", scripts: [][]sentinelStep{sub, askMaster(bulks("", "6379"))},
			want: `address "": lookup : no such host`},
		{name: "event, then hangs up at the question", scripts: [][]sentinelStep{
			{{"PSUBSCRIBE *", subscribed + event("+sdown", "master m 10.0.0.1 6379") + event("+odown", "master m 10.0.0.1 6379")}},
			askMaster(bulks("10.0.0.1", "6379")), nil},
			want: "EOF", reported: addrs("10.0.0.1:6379")},
		{name: "replicas refused", replicas: true, scripts: [][]sentinelStep{sub, askReplicas("-NOPERM no\r\n")},
			want: `SENTINEL replicas answered "-NOPERM no"`},
		{name: "replicas not a list", replicas: true, scripts: [][]sentinelStep{sub, askReplicas(":3\r\n")},
			want: `SENTINEL replicas answered "3"`},
		{name: "replica not a field list", replicas: true, scripts: [][]sentinelStep{sub, askReplicas("*1\r\n" + bulks("ip", "10.0.0.1", "port"))},
			want: `SENTINEL replicas answered "[ip 10.0.0.1 port]"`},
		{name: "replica field not a string", replicas: true, scripts: [][]sentinelStep{sub, askReplicas("*1\r\n*2\r\n$2\r\nip\r\n:1\r\n")},
			want: `SENTINEL replicas answered "[ip 1]"`},
		{name: "replica without a port", replicas: true, scripts: [][]sentinelStep{sub, askReplicas("*1\r\n" + replica("10.0.0.1", "x"))},
			want: `port "x"`},
		{name: "before Redis 5, hangs up", replicas: true, scripts: [][]sentinelStep{sub, {
			{"SENTINEL replicas m", "-ERR unknown subcommand 'replicas'\r\n"}, {"SENTINEL slaves m", ""}, hangUp}},
			want: "EOF"},
		{name: "before Redis 5, then the subscription ends", replicas: true, scripts: [][]sentinelStep{append(sub, hangUp), {
			{"SENTINEL replicas m", "-ERR unknown subcommand 'replicas'\r\n"},
			{"SENTINEL slaves m", "*2\r\n" + replica("10.0.0.2", "6379") + replica("localhost", "6380")}}},
			want: "subscription: EOF", reported: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:6379"), {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := scriptedSentinel(t, tc.scripts...)
			d := &config.Discovery{Sentinel: []netip.AddrPort{addr}, Master: "m"}
			if tc.replicas {
				d.Role = config.RoleReplica
			}
			s, err := NewSentinel(d, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			s.timeout, s.refresh = 2*time.Second, time.Hour
			var published [][]netip.AddrPort
			err = s.watch(context.Background(), addr, func(a []netip.AddrPort) { published = append(published, a) })
			if err == nil || err.Error() != tc.want {
				t.Fatalf("watch = %v, want %q", err, tc.want)
			}
			switch {
			case tc.reported == nil && len(published) != 0:
				t.Fatalf("published %v", published)
			case tc.reported == nil:
			case len(published) != 1 || len(published[0]) != len(tc.reported):
				t.Fatalf("published %v, want once %v", published, tc.reported)
			default:
				for i, want := range tc.reported {
					got := published[0][i]
					if want.IsValid() && got != want || !want.IsValid() && (!got.Addr().IsLoopback() || got.Port() != 6380) {
						t.Fatalf("published %v, want %v (a zero address: localhost:6380 resolved)", published, tc.reported)
					}
				}
			}
		})
	}
}

// TestSentinelRefreshFails: the periodic question that proves the
// Sentinel alive ends the watch when it fails.
func TestSentinelRefreshFails(t *testing.T) {
	sub := []sentinelStep{{"PSUBSCRIBE *", "*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n"}}
	addr := scriptedSentinel(t, sub, []sentinelStep{{"SENTINEL get-master-addr-by-name m", bulks("10.0.0.1", "6379")}}, nil)
	s, err := NewSentinel(&config.Discovery{Sentinel: []netip.AddrPort{addr}, Master: "m"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.timeout, s.refresh = 2*time.Second, 20*time.Millisecond
	var published [][]netip.AddrPort
	err = s.watch(context.Background(), addr, func(a []netip.AddrPort) { published = append(published, a) })
	if err == nil || err.Error() != "EOF" || len(published) != 1 {
		t.Fatalf("watch = %v after publishing %v; want EOF after one report", err, published)
	}
}
