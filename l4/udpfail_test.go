package l4

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// noReply reports whether c receives nothing within d: for the datagrams
// the data plane dropped, whose drop was counted already.
func noReply(c *net.UDPConn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 64))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// With responses = 0 nothing is expected back: what a backend sends to the
// loop's shared socket anyway is dropped and counted as unsolicited, and
// never reaches a client.
func TestUDPResponsesZeroDropsReplies(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('r'))
	s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
		f.Responses(0)
	}))
	c := udpClient(t, s.Addrs("fe")[0])
	const n = 5
	for i := 0; i < n; i++ {
		if _, err := c.Write([]byte("fire")); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "every reply dropped as unsolicited", func() bool {
		return counters(t, s).Drops[DropUnsolicited] == n
	})
	if got := counters(t, s); got.DatagramsIn != n || got.DatagramsOut != 0 || got.BytesOut != 0 {
		t.Errorf("datagrams in %d out %d, bytes out %d; want %d, 0, 0", got.DatagramsIn, got.DatagramsOut, got.BytesOut, n)
	}
	if !noReply(c, 100*time.Millisecond) {
		t.Error("a reply reached the client of a responses = 0 frontend")
	}
}

// max_connections_per_client and connection_rate_per_client bound the
// flows of one client address, as they bound connections: a datagram that
// would open one flow too many is dropped and counted under its reason,
// and the count frees when a flow ends.
func TestUDPPerClientLimits(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('p'))
	t.Run("max_connections_per_client", func(t *testing.T) {
		s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
			f.MaxConnectionsPerClient(1)
		}))
		fe := s.Addrs("fe")[0]
		first, second := udpClient(t, fe), udpClient(t, fe)
		if _, err := udpExchange(first, []byte("1"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := second.Write([]byte("2")); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, "the second flow refused", func() bool {
			return counters(t, s).Drops[DropPerClient] == 1
		})
		if c := counters(t, s); c.Active != 1 || c.Total != 1 {
			t.Errorf("%d flows (%d in all), want the first alone", c.Active, c.Total)
		}
		list, _ := s.Connections("fe", 0, 10)
		if len(list) != 1 || s.CloseConnection(list[0].ID) != nil {
			t.Fatalf("flows %+v; want the first, closed", list)
		}
		if got, err := udpExchange(second, []byte("2"), 5*time.Second); err != nil || string(got) != "p2" {
			t.Errorf("the second client once the first flow ended: %q, %v", got, err)
		}
	})
	t.Run("connection_rate_per_client", func(t *testing.T) {
		s := startServer(t, udpConfig(t, []netip.AddrPort{b.addr}, func(f *config.FrontendBuilder) {
			f.ConnectionRatePerClient(1)
		}))
		fe := s.Addrs("fe")[0]
		first, second := udpClient(t, fe), udpClient(t, fe)
		start := time.Now()
		if _, err := udpExchange(first, []byte("1"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := second.Write([]byte("2")); err != nil {
			t.Fatal(err)
		}
		var c FrontendCounters
		testutil.WaitFor(t, 5*time.Second, "the second flow refused", func() bool {
			c = counters(t, s)
			return c.Drops[DropRateLimit] == 1 || c.Total == 2
		})
		if c.Total == 2 {
			if el := time.Since(start); el < time.Second {
				t.Fatalf("a second flow %v after the first, at one flow a second", el)
			}
			t.Skip("the machine stalled for a second: the bucket refilled before the second datagram")
		}
		// The bucket refills at one flow a second.
		testutil.WaitFor(t, 5*time.Second, "a new flow a second later", func() bool {
			got, err := udpExchange(second, []byte("2"), 200*time.Millisecond)
			return err == nil && string(got) == "p2"
		})
		if el := time.Since(start); el < 900*time.Millisecond {
			t.Errorf("a second flow after %v at one flow a second", el)
		}
	})
}

// A backend the kernel will not send to (a broadcast address: sendto
// answers EACCES) loses every datagram, each counted as a send error,
// with and without a flow kept; none is counted as relayed.
func TestUDPSendRefusedByKernel(t *testing.T) {
	bcast := netip.MustParseAddrPort("255.255.255.255:9")
	for _, responses := range []int{1, 0} {
		s := startServer(t, udpConfig(t, []netip.AddrPort{bcast}, func(f *config.FrontendBuilder) {
			f.Responses(responses)
		}))
		c := udpClient(t, s.Addrs("fe")[0])
		const n = 3
		for i := 0; i < n; i++ {
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		testutil.WaitFor(t, 5*time.Second, "every datagram counted as a send error", func() bool {
			return counters(t, s).Drops[DropSendError] == n
		})
		if got := counters(t, s); got.DatagramsIn != 0 || got.BytesIn != 0 {
			t.Errorf("responses %d: %d datagrams, %d bytes counted in", responses, got.DatagramsIn, got.BytesIn)
		}
	}
}

// limitFDs lowers this process's open file limit to none for the rest of
// the test, or until the returned function restores it: every socket,
// pipe or file opened meanwhile fails with EMFILE, as when the process
// runs out of descriptors. Nothing else in the test process may open one
// meanwhile (the package's tests run one at a time).
func limitFDs(t *testing.T) (restore func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	none := unix.Rlimit{Cur: 0, Max: old.Max}
	if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &none, nil); err != nil {
		t.Fatal(err)
	}
	done := false
	restore = func() {
		if !done {
			done = true
			if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &old, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)
	return restore
}

// Out of file descriptors, a UDP frontend cannot open a socket for a new
// flow (or, with responses = 0, the shared one towards a backend): the
// datagram is dropped and counted as local_error, the daemon log says why
// once (not once per datagram), and flows open again once descriptors are
// back.
func TestUDPOutOfFDs(t *testing.T) {
	b := startUDPBackend(t, taggedEcho('f'))
	cfg := buildConfig(t, config.New().Workers(1).ConnectionsBuffer(testLogBuffer).
		Frontend("fe").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").HealthCheck(config.CheckNone).
		Backend(b.addr.String(), 1).
		Frontend("sink").Protocol(config.ProtocolUDP).Listen("127.0.0.1:0").HealthCheck(config.CheckNone).Responses(0),
		[]netip.AddrPort{b.addr}, nil)
	s, log := startLogged(t, cfg)
	flows, sinks := udpClient(t, s.Addrs("fe")[0]), udpClient(t, s.Addrs("sink")[0])

	restore := limitFDs(t)
	const n = 3
	for i := 0; i < n; i++ {
		flows.Write([]byte("flow"))
		sinks.Write([]byte("sink"))
	}
	dropped := func(name string) uint64 { c, _ := s.Counters(name); return c.Drops[DropLocal] }
	testutil.WaitFor(t, 5*time.Second, "every datagram dropped for want of a socket", func() bool {
		return dropped("fe") == n && dropped("sink") == n
	})
	restore()
	if c := counters(t, s); c.Active != 0 || c.Total != 0 || c.DatagramsIn != 0 {
		t.Errorf("active %d, total %d, datagrams in %d: no flow could open", c.Active, c.Total, c.DatagramsIn)
	}
	warned := map[string]int{}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "cannot open a UDP socket to a backend") {
			for _, name := range []string{`"frontend":"fe"`, `"frontend":"sink"`} {
				if strings.Contains(line, name) {
					warned[name]++
				}
			}
			if !strings.Contains(line, `"error":"socket: too many open files"`) || !strings.Contains(line, `"failures":1`) {
				t.Errorf("warning %s", line)
			}
		}
	}
	if warned[`"frontend":"fe"`] != 1 || warned[`"frontend":"sink"`] != 1 {
		t.Errorf("warnings per frontend %v; want one each, for %d failures", warned, n)
	}

	// Descriptors are back: the next datagram opens its flow.
	if got, err := udpExchange(flows, []byte("again"), 5*time.Second); err != nil || string(got) != "fagain" {
		t.Fatalf("after the descriptors came back: %q, %v", got, err)
	}
	sinks.Write([]byte("again"))
	testutil.WaitFor(t, 5*time.Second, "the sink's datagram sent", func() bool {
		c, _ := s.Counters("sink")
		return c.DatagramsIn == 1
	})
}
