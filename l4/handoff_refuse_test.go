package l4

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// startLogged is startServer with the server's own log (warnings and up)
// kept in a buffer as well, for tests that check what it says.
func startLogged(t *testing.T, cfg *config.Config) (*Server, *testutil.SyncBuffer) {
	t.Helper()
	buf := &testutil.SyncBuffer{}
	s, err := NewServer(cfg, zerolog.New(zerolog.MultiLevelWriter(buf, zerolog.NewTestWriter(t))).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	capture(s)
	t.Cleanup(func() { captures.Delete(s) })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, buf
}

// refusals returns the error of each "could not be adopted" warning in a
// server's log, by the connection ID it names.
func refusals(t *testing.T, log *testutil.SyncBuffer) map[uint64]string {
	t.Helper()
	out := make(map[uint64]string)
	sc := bufio.NewScanner(strings.NewReader(log.String()))
	for sc.Scan() {
		var m struct {
			Conn    uint64 `json:"conn"`
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && strings.Contains(m.Message, "could not be adopted") {
			out[m.Conn] = m.Error
		}
	}
	return out
}

// socketPairs makes n connected pairs of stream sockets: the first of each
// goes to Adopt, the second tells the test whether it was closed.
func socketPairs(t *testing.T, n int) (give, keep []int) {
	t.Helper()
	for i := 0; i < n; i++ {
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(p[1]) })
		give, keep = append(give, p[0]), append(keep, p[1])
	}
	return give, keep
}

// peerClosed reports whether the other end of fd was closed: fd reads the
// end of the stream within 5 seconds.
func peerClosed(fd int) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 5000); err != nil || n != 1 {
		return fmt.Errorf("not readable after 5s (%d, %v)", n, err)
	}
	var b [1]byte
	n, err := unix.Read(fd, b[:])
	if n != 0 || err != nil {
		return fmt.Errorf("read %d bytes, %v; want the end of the stream", n, err)
	}
	return nil
}

// refusalCase is a hand-over record the adopting server must refuse,
// with the error it must give.
type refusalCase struct {
	name string
	rec  HandoffRecord
	want string
}

// checkRefusals adopts each case's record (IDs 1, 2, ... by order) with
// fresh sockets and checks that every one is refused with its error, its
// sockets closed, and the refusals of frontend "fe" counted.
func checkRefusals(t *testing.T, s *Server, log *testutil.SyncBuffer, cases []refusalCase) {
	t.Helper()
	before, _ := s.Counters("fe")
	var counted uint64
	for i, tc := range cases {
		r := tc.rec
		r.ID = uint64(1000 + i + int(before.Closed[CauseHandoverRefused]))
		if r.V == 0 {
			r.V = HandoffVersion
		}
		give, keep := socketPairs(t, r.FDs)
		st := s.Adopt([]HandoffRecord{r}, give)
		if st != (HandoffStats{Refused: 1}) {
			t.Errorf("%s: adopted %+v, want one refused", tc.name, st)
		}
		for _, fd := range keep {
			if err := peerClosed(fd); err != nil {
				t.Errorf("%s: a socket of the refused record: %v", tc.name, err)
			}
		}
		if got := refusals(t, log)[r.ID]; got != tc.want {
			t.Errorf("%s: refused with %q, want %q", tc.name, got, tc.want)
		}
		if r.Frontend == "fe" {
			counted++
		}
	}
	if fc, _ := s.Counters("fe"); fc.Closed[CauseHandoverRefused]-before.Closed[CauseHandoverRefused] != counted {
		t.Errorf("%d refusals counted on frontend fe, want %d", fc.Closed[CauseHandoverRefused]-before.Closed[CauseHandoverRefused], counted)
	}
}

// Adopt refuses what it cannot take, each record with an error that says
// why, its sockets closed (both peers then get a reset or an end), and the
// refusal counted under handover_refused: a record of another version, of
// a frontend or backend this config lacks, of a kind that is not the
// frontend's protocol, one whose fds do not line up with it, a backend at
// its max_connections.
func TestAdoptRefusesTCPRecords(t *testing.T) {
	b := startBackend(t, greeter)
	s, log := startLogged(t, testConfig(t, nil, func(fb *config.FrontendBuilder) {
		fb.Backend(b.addr.String(), 1).BackendOpts(config.BackendOptions{MaxConnections: 1})
	}))
	// The backend's one slot is taken by a client.
	c := dialFE(t, s)
	if !greeted(c, bufio.NewReader(c), 5*time.Second) {
		t.Fatal("client not relayed")
	}
	be := s.Backends("fe")[0]
	tcp := func(mutate func(*HandoffRecord)) HandoffRecord {
		r := HandoffRecord{
			Kind: HandoffTCP, Frontend: "fe", Client: "127.0.0.1:40000", FDs: 2,
			Backend: be.Name(), BackendAddr: be.Address().String(),
		}
		mutate(&r)
		return r
	}
	_, badClient := netip.ParseAddrPort("somewhere")
	checkRefusals(t, s, log, []refusalCase{
		{"version", tcp(func(r *HandoffRecord) { r.V = HandoffVersion + 1 }),
			fmt.Sprintf("record version %d, this process reads %d", HandoffVersion+1, HandoffVersion)},
		{"frontend", tcp(func(r *HandoffRecord) { r.Frontend = "gone" }), `no frontend "gone"`},
		{"client", tcp(func(r *HandoffRecord) { r.Client = "somewhere" }), "client address: " + badClient.Error()},
		{"kind", tcp(func(r *HandoffRecord) { r.Kind = "sctp" }), `unknown kind "sctp"`},
		{"tcp with one fd", tcp(func(r *HandoffRecord) { r.FDs = 1 }), "not a TCP connection of a TCP frontend"},
		{"client with two fds", tcp(func(r *HandoffRecord) { r.Kind = HandoffClient }), "not a client of a TCP frontend"},
		{"flow", tcp(func(r *HandoffRecord) { r.Kind, r.FDs = HandoffUDP, 1 }), "not a flow of a UDP frontend"},
		{"backend", tcp(func(r *HandoffRecord) { r.Backend, r.BackendAddr = "old", "127.0.0.1:1" }),
			`no backend "old" at 127.0.0.1:1`},
		{"backend full", tcp(func(*HandoffRecord) {}), fmt.Sprintf("backend %q is at its max_connections", be.Name())},
	})
	// A refusal returns every reservation: the server still holds its one
	// client, and the backend its one connection.
	if n := s.ActiveConnections(); n != 1 {
		t.Errorf("%d connections after the refusals, want 1", n)
	}
	if n := be.Active(); n != 1 {
		t.Errorf("backend holds %d connections after the refusals, want 1", n)
	}
	// Each refusal that reached a loop, of a frontend the server has, has
	// its connection log line, with the frontend's address (the records
	// name none), and a duration of 0 when the record has no start.
	var lines []logLine
	testutil.WaitFor(t, 5*time.Second, "8 connection log lines", func() bool {
		var n int
		n, lines = captured(s).withCause(CauseHandoverRefused)
		return n == 8
	})
	for _, l := range lines {
		f := l.fields
		id, _ := f["connection_id"].(float64)
		if id < 1000 || id > 1008 || id == 1001 || f["listen"] != s.Addrs("fe")[0].String() ||
			f["duration_seconds"] != 0.0 || f["error"] != true {
			t.Errorf("line of a refused record: %s", l.text)
		}
	}
}

// When the fds do not line up with the records (fewer than a record
// says), the record and every one after it are refused and every fd is
// closed: an fd is never adopted under another record.
func TestAdoptRefusesMisalignedFDs(t *testing.T) {
	b := startBackend(t, echo)
	s, log := startLogged(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	be := s.Backends("fe")[0]
	rec := func(id uint64, fds int) HandoffRecord {
		return HandoffRecord{V: HandoffVersion, Kind: HandoffTCP, ID: id, Frontend: "fe", Client: "127.0.0.1:40000",
			Backend: be.Name(), BackendAddr: be.Address().String(), FDs: fds}
	}
	// Record 1 (refused for its version) takes two fds; record 2 says
	// three and finds one: it, the record after it and the fd are
	// refused.
	bad := rec(1, 2)
	bad.V = 9
	give, keep := socketPairs(t, 3)
	st := s.Adopt([]HandoffRecord{bad, rec(2, 3), rec(3, 1)}, give)
	if st != (HandoffStats{Refused: 3}) {
		t.Errorf("adopted %+v, want all three refused", st)
	}
	for i, fd := range keep {
		if err := peerClosed(fd); err != nil {
			t.Errorf("fd %d: %v", i, err)
		}
	}
	got := refusals(t, log)
	if got[1] != "record version 9, this process reads 1" || got[2] != "1 fds for a record of 3" || got[3] != "1 fds for a record of 1" {
		t.Errorf("refusals %v", got)
	}
	if fc, _ := s.Counters("fe"); fc.Closed[CauseHandoverRefused] != 3 {
		t.Errorf("%d refusals counted, want 3", fc.Closed[CauseHandoverRefused])
	}

	// Global max_connections reached: an adopted connection would
	// exceed it.
	s2, log2 := startLogged(t, buildConfig(t, config.New().Workers(2).MaxConnections(1).ConnectionsBuffer(testLogBuffer).
		Frontend("fe").Listen("127.0.0.1:0"), []netip.AddrPort{b.addr}, nil))
	dialFE(t, s2)
	testutil.WaitFor(t, 5*time.Second, "the client relaying", func() bool { return s2.ActiveConnections() == 1 })
	be2 := s2.Backends("fe")[0]
	const full = "global max_connections is reached, or the server is stopping"
	checkRefusals(t, s2, log2, []refusalCase{
		{"global cap", HandoffRecord{Kind: HandoffTCP, Frontend: "fe", Client: "127.0.0.1:40000",
			Backend: be2.Name(), BackendAddr: be2.Address().String(), FDs: 2}, full},
		{"global cap, client", HandoffRecord{Kind: HandoffClient, Frontend: "fe", Client: "127.0.0.1:40000", FDs: 1}, full},
	})
}

// A server not started, or stopped, refuses every record: no loop would
// serve it.
func TestAdoptRefusesWhenNotServing(t *testing.T) {
	b := startBackend(t, echo)
	for _, started := range []bool{false, true} {
		buf := &testutil.SyncBuffer{}
		s, err := NewServer(testConfig(t, []netip.AddrPort{b.addr}, nil), zerolog.New(buf).Level(zerolog.WarnLevel))
		if err != nil {
			t.Fatal(err)
		}
		want := "the server is not started"
		if started {
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			want = "the server stopped"
		}
		s.Close()
		give, keep := socketPairs(t, 1)
		st := s.Adopt([]HandoffRecord{{V: HandoffVersion, Kind: HandoffClient, ID: 7, Frontend: "fe", Client: "127.0.0.1:40000", FDs: 1}}, give)
		if st != (HandoffStats{Refused: 1}) {
			t.Errorf("started %v: adopted %+v, want one refused", started, st)
		}
		if err := peerClosed(keep[0]); err != nil {
			t.Errorf("started %v: %v", started, err)
		}
		if got := refusals(t, buf)[7]; got != want {
			t.Errorf("started %v: refused with %q, want %q", started, got, want)
		}
	}
}

// The refusals of UDP flows: a flow of a frontend socket this process
// does not serve, of a client that has a flow already, of a backend the
// config lacks, past max_flows. The flows already open are untouched.
func TestAdoptRefusesUDPRecords(t *testing.T) {
	back := startUDPBackend(t, taggedEcho('e'))
	cfg := buildConfig(t, config.New().Workers(1).ConnectionsBuffer(testLogBuffer).Frontend("fe").Protocol(config.ProtocolUDP).
		Listen("127.0.0.1:0").HealthCheck(config.CheckNone).LogConnections(config.LogAll).MaxFlows(2),
		[]netip.AddrPort{back.addr}, nil)
	s, log := startLogged(t, cfg)
	fe := s.Addrs("fe")[0]
	socks, err := s.Sockets()
	if err != nil || len(socks) != 1 {
		t.Fatalf("sockets %v, %v; want the one frontend socket", socks, err)
	}
	ino := socketInode(socks[0].FD)
	unix.Close(socks[0].FD)

	a := udpClient(t, fe)
	if _, err := udpExchange(a, []byte("a"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	be := s.Backends("fe")[0]
	flow := func(mutate func(*HandoffRecord)) HandoffRecord {
		r := HandoffRecord{
			Kind: HandoffUDP, Frontend: "fe", Client: "127.0.0.1:40000", FDs: 1, Socket: ino,
			Backend: be.Name(), BackendAddr: be.Address().String(), Start: time.Now().UnixNano(),
		}
		mutate(&r)
		return r
	}
	_, badLocal := netip.ParseAddr("here")
	checkRefusals(t, s, log, []refusalCase{
		{"socket", flow(func(r *HandoffRecord) { r.Socket = 0 }), "its frontend socket is not served here"},
		{"local", flow(func(r *HandoffRecord) { r.Local = "here" }), "local address: " + badLocal.Error()},
		{"exists", flow(func(r *HandoffRecord) { r.Client = a.LocalAddr().String() }), "a flow of that client exists already"},
		{"backend", flow(func(r *HandoffRecord) { r.Backend, r.BackendAddr, r.Local = "old", "127.0.0.1:1", "127.0.0.1" }),
			`no backend "old" at 127.0.0.1:1`},
		{"tcp", flow(func(r *HandoffRecord) { r.Kind, r.FDs = HandoffTCP, 2 }), "not a TCP connection of a TCP frontend"},
	})
	b := udpClient(t, fe)
	if _, err := udpExchange(b, []byte("b"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	checkRefusals(t, s, log, []refusalCase{
		{"max_flows", flow(func(*HandoffRecord) {}), "max_flows is reached"},
	})
	// The refusals returned what they reserved: two flows, both still
	// answered.
	if c := counters(t, s); c.Active != 2 || be.Active() != 2 {
		t.Errorf("%d flows, backend holds %d, after the refusals; want 2 and 2", c.Active, be.Active())
	}
	for _, c := range []*net.UDPConn{a, b} {
		if got, err := udpExchange(c, []byte("again"), 5*time.Second); err != nil || string(got) != "eagain" {
			t.Errorf("flow of %v after the refusals: %q, %v", c.LocalAddr(), got, err)
		}
	}
	// The line of a refused flow names the address its client wrote to:
	// the record's local address on the frontend's port.
	var lines []logLine
	testutil.WaitFor(t, 5*time.Second, "a line per refused flow", func() bool {
		var n int
		n, lines = captured(s).withCause(CauseHandoverRefused)
		return n == 6
	})
	found := false
	for _, l := range lines {
		if l.fields["connection_id"] == 1003.0 {
			found = true
			if l.fields["listen"] != fmt.Sprintf("127.0.0.1:%d", fe.Port()) || l.fields["protocol"] != "udp" {
				t.Errorf("line of the refused flow: %s", l.text)
			}
		}
	}
	if !found {
		t.Errorf("no line for the refused flow 1003 in %v", lines)
	}
}
