package l4

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// 50000 clients, each from its own address and port, send one query: each
// query is answered, or refused at max_flows and counted. Once they stop,
// every flow ends at its idle timeout, and fds come back to where they
// were; RSS stays bounded on the way.
func TestUDPManyClientsFlowsReturnToBaseline(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('A'))
	// The idle timeout outlasts a client's wait for its reply (2 s, see
	// queryOnce): a reply that a loaded machine delays past the client's
	// patience is still relayed, and counted, by its flow. With a 1 s idle
	// timeout such a reply reached a closed flow and was counted nowhere
	// (15 of 50000 once under make test with a CPU hog).
	const idle = 3 * time.Second
	// max_flows stays well inside the 20000-fd limit, which this process
	// shares with the clients and the backend. The clients' pace keeps the
	// flows alive at once (pace × idle: 7500) well under max_flows, on a
	// quiet machine too.
	const pace = 2500 // queries per second, at most
	// A flood of 20 s or more: not beside a test whose timing a busy CPU
	// breaks (a real database failover) in another package.
	testutil.Exclusive(t, "cpu", 5*time.Minute)
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.IdleTimeout(idle).MaxFlows(12000)
	}))
	fe := s.Addrs("fe")[0]
	fds := openFDs(t)
	rss := rssBytes(t)

	// Two source addresses times 25000 ports below the ephemeral range:
	// 50000 distinct client addresses. The addresses are random within
	// 127.0.0.0/8, so two runs of this test at once do not collide.
	type source struct {
		ip   [4]byte
		port int
	}
	first := [4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(2 + rand.IntN(250))}
	ips := [2][4]byte{first, first}
	ips[1][3]++
	sources := make(chan source, 64)
	go func() {
		defer close(sources)
		for port := 2000; port < 27000; port++ {
			for _, ip := range ips {
				sources <- source{ip, port}
			}
		}
	}()
	var answered, unanswered, skipped atomic.Int64
	var peakRSS atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	tick := time.NewTicker(time.Second / pace)
	defer tick.Stop()
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for src := range sources {
				<-tick.C // pacing the clients, not waiting for a result
				ok, err := queryOnce(src.ip, src.port, fe, buf)
				switch {
				case errors.Is(err, unix.EADDRINUSE):
					skipped.Add(1) // a port some other program holds
				case err != nil:
					select {
					case errs <- err:
					default:
					}
					return
				case ok:
					if answered.Add(1)%5000 == 0 {
						peakRSS.Store(max(peakRSS.Load(), rssBytes(t)))
					}
				default:
					unanswered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sent := answered.Load() + unanswered.Load()
	if sent < 49000 {
		t.Fatalf("only %d queries sent (%d source ports in use elsewhere)", sent, skipped.Load())
	}
	// A reply is counted once its batch's sendmmsg returns, which may be
	// after its client has read it: wait for the counts to settle.
	var c FrontendCounters
	settled := time.Now().Add(10 * time.Second)
	for {
		c = counters(t, s)
		if c.DatagramsOut >= c.Total && c.DatagramsIn >= c.Total || time.Now().After(settled) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// splicer's side is exact: every query opened a flow or was dropped
	// at max_flows, and every flow's query went up and its reply down.
	// Datagrams from elsewhere to a flow's port (other tests' processes
	// share the loopback ports) are dropped as foreign and are none of
	// these queries: counted apart, and few.
	foreign := c.Drops[DropForeign]
	if c.Total+c.Drops[DropMaxFlows] != uint64(sent) || totalDrops(c)-foreign != c.Drops[DropMaxFlows] ||
		c.DatagramsIn != c.Total || c.DatagramsOut != c.Total || foreign > uint64(sent)/1000 {
		t.Errorf("%d queries sent; flows opened %d, datagrams in %d out %d, drops %v: want each query in a flow or dropped at max_flows, and each flow's reply relayed",
			sent, c.Total, c.DatagramsIn, c.DatagramsOut, c.Drops)
	}
	// The clients' side: a reply relayed may still reach its client after
	// the client's 2 s wait on a loaded machine; a few such are allowed,
	// not more.
	if late := uint64(unanswered.Load()) - c.Drops[DropMaxFlows]; uint64(unanswered.Load()) < c.Drops[DropMaxFlows] || late > uint64(sent)/1000 {
		t.Errorf("answered %d, unanswered %d, dropped at max_flows %d: want every unanswered query dropped, but a few late replies",
			answered.Load(), unanswered.Load(), c.Drops[DropMaxFlows])
	} else if late > 0 {
		t.Logf("%d replies relayed came after the client stopped waiting", late)
	}
	t.Logf("%d queries: %d answered, %d dropped at max_flows, %d foreign datagrams dropped; peak flows-side RSS growth %d KiB",
		sent, answered.Load(), c.Drops[DropMaxFlows], foreign, (peakRSS.Load()-rss)/1024)
	testutil.WaitFor(t, idle+10*time.Second, "every flow idle", func() bool { return counters(t, s).Active == 0 })
	testutil.WaitFor(t, 10*time.Second, "fds back to baseline", func() bool { return openFDs(t) <= fds })
	if grown := peakRSS.Load() - rss; grown > 128<<20 {
		t.Errorf("RSS grew by %d MiB during the run, want at most 128", grown>>20)
	}
}

// queryOnce sends one datagram to fe from ip:port and waits for the reply.
// It reports false when none came within the wait.
func queryOnce(ip [4]byte, port int, fe netip.AddrPort, buf []byte) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ip, Port: port}); err != nil {
		return false, err
	}
	// Long enough for a reply on a loaded machine: an unanswered query
	// must be one splicer dropped, not a late one.
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return false, err
	}
	to := &unix.SockaddrInet4{Addr: fe.Addr().As4(), Port: int(fe.Port())}
	if err := unix.Sendto(fd, []byte("query"), 0, to); err != nil {
		return false, err
	}
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false, nil
		case err != nil:
			return false, err
		case string(buf[:n]) != "Aquery":
			return false, fmt.Errorf("client %v:%d got %q", ip, port, buf[:n])
		}
		return true, nil
	}
}

// A real DNS server (dnsmasq) answers dig through splicer with
// responses = 1: every query is answered and its flow ends on the answer.
func TestUDPDNSThroughDnsmasq(t *testing.T) {
	testutil.SkipShort(t, "dnsmasq")
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("install dnsmasq (Debian package dnsmasq-base) to run this test")
	}
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("install dig (Debian package bind9-dnsutils) to run this test")
	}
	dns := startDnsmasq(t, dnsmasq, dig)
	s := startServer(t, udpConfig(t, []netip.AddrPort{dns}, func(f *config.FrontendBuilder) {
		f.Responses(1)
	}))
	fe := s.Addrs("fe")[0]
	const queries = 20
	for i := 0; i < queries; i++ {
		name := fmt.Sprintf("host%d.splicer.test", i)
		out, err := runDig(dig, fe, name)
		if err != nil {
			t.Fatalf("dig %s through splicer: %v\n%s", name, err, out)
		}
		if out != "192.0.2.7" {
			t.Fatalf("dig %s through splicer answered %q, want 192.0.2.7", name, out)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "every flow ended and its answer counted", func() bool {
		c := counters(t, s)
		return c.Active == 0 && c.DatagramsOut == queries
	})
	c := counters(t, s)
	if c.Total != queries || c.DatagramsIn != queries || c.DatagramsOut != queries || totalDrops(c) != 0 {
		t.Errorf("flows %d, datagrams in %d out %d, drops %v; want %d, %d, %d, none",
			c.Total, c.DatagramsIn, c.DatagramsOut, c.Drops, queries, queries, queries)
	}
}

// startDnsmasq runs dnsmasq on a free loopback port, answering
// *.splicer.test with 192.0.2.7 and nothing else, and waits until dig
// gets an answer from it directly.
func startDnsmasq(t *testing.T, dnsmasq, dig string) netip.AddrPort {
	t.Helper()
	// dnsmasq cannot report a port it chose, so pick one; a port taken in
	// between makes dnsmasq exit, and another is tried.
	for attempt := 0; attempt < 5; attempt++ {
		addr := testutil.FreeUDPAndTCP(t) // dnsmasq binds both
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
			"--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
			"--listen-address=127.0.0.1", fmt.Sprintf("--port=%d", addr.Port()),
			"--address=/splicer.test/192.0.2.7", "--pid-file=", "--user=root", "--group=root")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("start dnsmasq: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			cancel()
			<-exited
		})
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{} // try another port
				continue
			default:
			}
			if out, err := runDig(dig, addr, "ready.splicer.test"); err == nil && out == "192.0.2.7" {
				return addr
			}
		}
		if deadline.IsZero() {
			t.Logf("dnsmasq on port %d exited: %s", addr.Port(), stderr.String())
			continue
		}
		t.Fatalf("dnsmasq on %s did not answer within 10s: %s", addr, stderr.String())
	}
	t.Fatal("dnsmasq could not bind a port in 5 attempts")
	return netip.AddrPort{}
}

// runDig asks server for name's A record, one try, and returns the answer.
func runDig(dig string, server netip.AddrPort, name string) (string, error) {
	cmd := exec.Command(dig, "@"+server.Addr().String(), "-p", fmt.Sprint(server.Port()),
		name, "A", "+short", "+tries=1", "+time=2")
	cmd.Env = append(os.Environ(), "HOME=/nonexistent") // ignore any ~/.digrc
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// A flood larger than the frontend socket's receive buffer loses datagrams
// in the kernel, before splicer reads them; each one is counted. Every
// datagram sent is either at the backend or among the drops: none goes
// missing unaccounted. With receive_buffer large enough to hold the whole
// flood, nothing is lost.
func TestUDPFloodEveryLossCounted(t *testing.T) {
	t.Run("kernel default", func(t *testing.T) { udpFlood(t, 0) })
	t.Run("receive_buffer 64MiB", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("a 64 MiB receive buffer needs CAP_NET_ADMIN (SO_RCVBUFFORCE): run as root")
		}
		if drops := udpFlood(t, 64<<20); drops != 0 {
			t.Errorf("%d datagrams dropped in a receive buffer sized for the whole flood", drops)
		}
	})
}

// udpFlood floods a one-worker UDP frontend with receive_buffer rcvbuf (0:
// the kernel's default), checks that every datagram is delivered or
// counted, and returns the receive-buffer drops.
func udpFlood(t *testing.T, rcvbuf int) uint64 {
	t.Helper()
	var received atomic.Int64
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// The backend must not drop: give it a buffer far beyond the flood
	// (SO_RCVBUFFORCE, as root; without root the test skips).
	raw, err := back.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
	})
	if serr != nil {
		back.Close()
		t.Skipf("cannot enlarge the backend's receive buffer (needs CAP_NET_ADMIN): %v", serr)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, err := back.Read(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	t.Cleanup(func() {
		back.Close()
		<-done
	})
	fb := config.New().Workers(1).Frontend("fe").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").
		HealthCheck(config.CheckNone).Responses(0).Backend(back.LocalAddr().String(), 1)
	if rcvbuf > 0 {
		fb.ReceiveBuffer(rcvbuf)
	}
	cfg, err := fb.Build()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg)
	fe := s.Addrs("fe")[0]

	const senders, each = 8, 4000
	var wg sync.WaitGroup
	for i := 0; i < senders; i++ {
		c := udpClient(t, fe)
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 200)
			for j := 0; j < each; j++ {
				if _, err := c.Write(msg); err != nil {
					t.Errorf("sender %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Nothing follows the flood: the drops after the last datagram the
	// kernel queued are learnt by the loop's periodic read of the count.
	var c FrontendCounters
	testutil.WaitFor(t, 10*time.Second, "every datagram delivered or counted", func() bool {
		c = counters(t, s)
		return received.Load()+int64(totalDrops(c)) == int64(senders*each)
	})
	// The counter moves just after the send the backend may already have
	// read: let it catch up before comparing.
	testutil.WaitFor(t, 10*time.Second, "datagrams in counted", func() bool {
		c = counters(t, s)
		return c.DatagramsIn == uint64(received.Load())
	})
	if totalDrops(c) != c.Drops[DropReceiveBuffer] {
		t.Errorf("drops %v: want only receive-buffer drops", c.Drops)
	}
	t.Logf("%d datagrams flooded: %d relayed, %d dropped in the receive buffer",
		senders*each, c.DatagramsIn, c.Drops[DropReceiveBuffer])
	return c.Drops[DropReceiveBuffer]
}
