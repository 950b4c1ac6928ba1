package l4

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

func TestConnectionsListAndClose(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	var clients []*net.TCPConn
	for i := 0; i < 5; i++ {
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := make([]byte, 10+i)
		c.Write(msg)
		if _, err := io.ReadFull(c, msg); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	all, total := s.Connections("", 0, 100)
	if total != 5 || len(all) != 5 {
		t.Fatalf("listed %d of %d, want 5 of 5", len(all), total)
	}
	for i, ci := range all {
		if ci.ID != uint64(i+1) || ci.Frontend != "fe" || ci.Backend != b.addr.String() ||
			ci.BytesIn != uint64(10+i) || ci.BytesOut != uint64(10+i) {
			t.Errorf("conn %d: %+v", i, ci)
		}
		if ci.Client != clients[i].LocalAddr().(*net.TCPAddr).AddrPort() {
			t.Errorf("conn %d client %s, want %s", i, ci.Client, clients[i].LocalAddr())
		}
	}
	// Paging: after ID 2, two at a time.
	page, total := s.Connections("fe", 2, 2)
	if total != 5 || len(page) != 2 || page[0].ID != 3 || page[1].ID != 4 {
		t.Errorf("page after 2: %+v (total %d)", page, total)
	}
	if none, total := s.Connections("other", 0, 10); len(none) != 0 || total != 0 {
		t.Errorf("unknown frontend listed %d", total)
	}

	if err := s.CloseConnection(3); err != nil {
		t.Fatal(err)
	}
	if _, err := clients[2].Read(make([]byte, 1)); err == nil {
		t.Error("closed connection still readable")
	}
	if err := s.CloseConnection(3); err != ErrNoConnection {
		t.Errorf("second close: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, "four left", func() bool { return s.ActiveConnections() == 4 })
	fc, ok := s.Counters("fe")
	want := FrontendCounters{Active: 4, Peak: 5, Total: 5, BytesIn: 10 + 11 + 12 + 13 + 14, BytesOut: 10 + 11 + 12 + 13 + 14}
	want.Closed[CauseAdminKill] = 1
	if !ok || fc != want {
		t.Errorf("counters %+v, want %+v", fc, want)
	}
}
