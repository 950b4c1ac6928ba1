package l4

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

func TestTokenBucketRefill(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b bucket
	const rate, burst = 2, 2
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, false}, // the burst, then empty
		{250 * time.Millisecond, false}, // half a token
		{500 * time.Millisecond, true},  // one token after 0.5 s at 2/s
		{500 * time.Millisecond, false},
		{10 * time.Second, true}, {10 * time.Second, true}, // refilled to the burst, not beyond
		{10 * time.Second, false},
	}
	for i, s := range steps {
		if got := b.take(t0.Add(s.at), rate, burst); got != s.want {
			t.Fatalf("step %d at +%v: take = %v, want %v", i, s.at, got, s.want)
		}
	}
}

func TestClientTableLimitsAndForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	tab := newClientTable(2, 0)
	for i, want := range []int{refusedNone, refusedNone, refusedPerClient} {
		if got := tab.admit(a, now); got != want {
			t.Fatalf("admit %d: %d, want %d", i, got, want)
		}
	}
	if got := tab.admit(b, now); got != refusedNone {
		t.Fatalf("another address refused: %d", got)
	}
	tab.release(a)
	if got := tab.admit(a, now); got != refusedNone {
		t.Fatalf("after a release: %d", got)
	}
	tab.release(a)
	tab.release(a)
	tab.release(b)
	if n := tab.size(); n != 0 {
		t.Errorf("%d addresses remembered with no connection and no rate limit", n)
	}
	if newClientTable(0, 0) != nil {
		t.Error("a table was built with no limit")
	}

	// With a rate limit an entry is kept until its bucket refills; a full
	// shard forgets such entries to make room.
	rt := newClientTable(0, 1)
	s := rt.shard(a)
	for i := 0; len(s.m) < maxClientsPerShard; i++ {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if rt.shard(ip) == s {
			rt.admit(ip, now)
			rt.release(ip)
		}
	}
	// The shard's first sweep ran at its first address; within sweepEvery
	// nothing expires, so the full shard refuses.
	if got := rt.admit(a, now); got != refusedTableFull {
		t.Fatalf("full shard with fresh buckets: %d, want table full", got)
	}
	if got := rt.admit(a, now.Add(2*time.Second)); got != refusedNone {
		t.Fatalf("full shard once buckets refilled: %d, want admitted", got)
	}
	if n := len(s.m); n != 1 {
		t.Errorf("shard kept %d entries after forgetting the idle ones, want 1", n)
	}

	// Idle entries expire with the periodic sweep, full shard or not.
	b4 := netip.MustParseAddr("198.51.100.7")
	other := rt.shard(b4)
	rt.admit(b4, now)
	rt.release(b4)
	for i := 0; ; i++ { // another address of the same shard, after sweepEvery
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		if ip != b4 && rt.shard(ip) == other {
			rt.admit(ip, now.Add(sweepEvery+2*time.Second))
			break
		}
	}
	other.mu.Lock()
	_, kept := other.m[b4]
	other.mu.Unlock()
	if kept {
		t.Error("an idle entry outlived the sweep period")
	}
}

func TestPerClientLimitsThroughProxy(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
		fb.MaxConnectionsPerClient(2)
	}))
	addr := s.Addrs("fe")[0].String()
	var held []net.Conn
	for i := 0; i < 2; i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if dialFrom(t, "127.0.0.1", addr) {
		t.Error("third connection from 127.0.0.1 served past max_connections_per_client = 2")
	}
	if !dialFrom(t, "127.0.0.2", addr) {
		t.Error("another client address refused")
	}
	held[0].Close()
	testutil.WaitFor(t, 5*time.Second, "a slot freed", func() bool {
		fc, _ := s.Counters("fe")
		return fc.Active == 1
	})
	if !dialFrom(t, "127.0.0.1", addr) {
		t.Error("refused after one of its connections ended")
	}
	if fc, _ := s.Counters("fe"); fc.PerClient != 1 {
		t.Errorf("per-client refusals %d, want 1", fc.PerClient)
	}
}

func TestConnectionRatePerClient(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
		fb.ConnectionRatePerClient(3)
	}))
	addr := s.Addrs("fe")[0].String()
	// Four connections within a third of a second, when the bucket gains
	// its next token: the burst of 3 passes, the fourth is refused. On a
	// loaded machine four round trips can take longer; then the bucket
	// may have refilled and the count says nothing, so the round is run
	// again from another client address (a fresh bucket).
	const refill = time.Second / 3
	for try := 0; ; try++ {
		from := fmt.Sprintf("127.0.0.%d", 4+try)
		before, _ := s.Counters("fe")
		start := time.Now()
		served := 0
		for i := 0; i < 4; i++ {
			if dialFrom(t, from, addr) {
				served++
			}
		}
		if took := time.Since(start); took >= refill {
			if try == 9 {
				t.Fatalf("10 rounds of four connections each took a third of a second or more (the last %v)", took)
			}
			t.Logf("four connections from %s took %v: again", from, took)
			continue
		}
		if fc, _ := s.Counters("fe"); served != 3 || fc.RateLimited-before.RateLimited != 1 {
			t.Errorf("from %s: served %d, rate-limited %d; want 3 and 1", from, served, fc.RateLimited-before.RateLimited)
		}
		return
	}
}
