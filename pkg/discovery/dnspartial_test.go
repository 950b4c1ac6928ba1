package discovery

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

const partialSvc = "_pg._tcp.db.test"

// TestDNSSRVTargetTimesOut runs the source: while one SRV target's
// address lookups go unanswered, a target added to the records is
// reported, and the silent one keeps its last address, with the weight
// its record has now; once it answers again, its new address replaces it.
func TestDNSSRVTargetTimesOut(t *testing.T) {
	f := startFakeDNS(t)
	f.set(partialSvc, dnsmessage.TypeSRV, srvRR(partialSvc, 0, 10, 10, 5432, "a.test"), srvRR(partialSvc, 0, 10, 10, 5432, "b.test"))
	f.set("a.test", dnsmessage.TypeA, aRR("a.test", 0, "10.0.0.1"))
	f.set("b.test", dnsmessage.TypeA, aRR("b.test", 0, "10.0.0.2"))
	f.set("c.test", dnsmessage.TypeA, aRR("c.test", 0, "10.0.0.3"))
	d := &config.Discovery{Type: config.DiscoverySRV, Name: partialSvc, DNS: dnsSettings(f.addr)}
	d.DNS.Interval, d.DNS.MinInterval, d.DNS.MaxInterval = 100*time.Millisecond, 100*time.Millisecond, time.Hour
	s := newDNSSource(t, d)

	var mu sync.Mutex
	var last string
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
	testutil.WaitFor(t, 10*time.Second, "a and b reported", reported("10.0.0.1:5432@10.0.0.1:5432 w10, 10.0.0.2:5432@10.0.0.2:5432 w10"))

	f.fail("b.test", true, 0)
	f.set("b.test", dnsmessage.TypeA, aRR("b.test", 0, "10.0.0.22")) // not heard while b is silent
	f.set(partialSvc, dnsmessage.TypeSRV, srvRR(partialSvc, 0, 10, 10, 5432, "a.test"),
		srvRR(partialSvc, 0, 10, 30, 5432, "b.test"), srvRR(partialSvc, 0, 10, 10, 5432, "c.test"))
	testutil.WaitFor(t, 10*time.Second, "c added, b held with its new weight",
		reported("10.0.0.1:5432@10.0.0.1:5432 w10, 10.0.0.2:5432@10.0.0.2:5432 w30, 10.0.0.3:5432@10.0.0.3:5432 w10"))
	if st := s.Stats()[0]; st.Partial == 0 || st.Failed != 0 || st.Empty != 0 || st.Backends != 3 {
		t.Errorf("stats %+v: want partial lookups, no failed or empty one, 3 backends", st)
	}

	f.fail("b.test", false, dnsmessage.RCodeSuccess)
	testutil.WaitFor(t, 10*time.Second, "b's new address once it answers",
		reported("10.0.0.1:5432@10.0.0.1:5432 w10, 10.0.0.22:5432@10.0.0.22:5432 w30, 10.0.0.3:5432@10.0.0.3:5432 w10"))
}

// TestDNSSRVPartial walks one SRV source through a sequence of answers on
// a clock the test moves: a failing target keeps its last addresses, with
// its current record's settings, for max_interval after its first failure
// and is then dropped; one that never resolved is left out; one that does
// not exist, or has no address, is dropped at once; when every target
// fails, or none gives an address and some fail, the lookup failed and
// the last good set serves on. Each lookup is counted once, in one
// result; each distinct failure is logged once, the expiry once, and the
// recovery once.
func TestDNSSRVPartial(t *testing.T) {
	f := startFakeDNS(t)
	srv := func(targets ...string) {
		var rrs []dnsmessage.Resource
		for i, target := range targets {
			rrs = append(rrs, srvRR(partialSvc, 60, 10, uint16(10+10*i), 5432, target))
		}
		f.set(partialSvc, dnsmessage.TypeSRV, rrs...)
	}
	f.set("a.test", dnsmessage.TypeA, aRR("a.test", 60, "10.0.0.1"))
	f.set("b.test", dnsmessage.TypeA, aRR("b.test", 60, "10.0.0.2"), aRR("b.test", 60, "10.0.0.12"))
	f.set("d.test", dnsmessage.TypeA, aRR("d.test", 60, "10.0.0.4"))
	f.set("e.test", dnsmessage.TypeA, aRR("e.test", 60, "10.0.0.5"))
	d := &config.Discovery{Type: config.DiscoverySRV, Name: partialSvc, DNS: dnsSettings(f.addr)} // interval 1s, max_interval 10s
	log := &syncLog{}
	s, err := NewDNS(&config.Frontend{Name: "f", Discovery: d}, d.DNS, zerolog.New(log).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }

	const (
		a   = "10.0.0.1:5432@10.0.0.1:5432"
		b12 = "10.0.0.12:5432@10.0.0.12:5432"
		b2  = "10.0.0.2:5432@10.0.0.2:5432"
		d4  = "10.0.0.4:5432@10.0.0.4:5432"
		e5  = "10.0.0.5:5432@10.0.0.5:5432"
		sum = "DNS lookup failed for some SRV targets"
	)
	for _, tc := range []struct {
		name    string
		advance time.Duration
		change  func()
		want    string
		stats   [4]uint64     // succeeded, partial, failed, empty
		due     time.Duration // until the next lookup
	}{
		{"all resolve", 0, func() { srv("a.test", "b.test", "e.test") },
			b12 + " w20, " + a + " w10, " + b2 + " w20, " + e5 + " w30", [4]uint64{1, 0, 0, 0}, 10 * time.Second},
		{"b fails, d new and failing, e gone from DNS", time.Second, func() {
			f.fail("b.test", false, dnsmessage.RCodeServerFailure)
			f.fail("d.test", false, dnsmessage.RCodeRefused)
			f.unset("e.test", dnsmessage.TypeA)
			srv("a.test", "e.test", "b.test", "d.test")
		}, b12 + " w30, " + a + " w10, " + b2 + " w30", [4]uint64{1, 1, 0, 0}, time.Second},
		{"e without address, b still held", 10*time.Second - time.Millisecond, func() {
			f.set("e.test", dnsmessage.TypeA)
		}, b12 + " w30, " + a + " w10, " + b2 + " w30", [4]uint64{1, 2, 0, 0}, time.Second},
		{"b failing for max_interval: dropped", time.Millisecond, nil,
			a + " w10", [4]uint64{1, 3, 0, 0}, time.Second},
		{"b failing, no longer held", time.Second, nil,
			a + " w10", [4]uint64{1, 4, 0, 0}, time.Second},
		{"a gone, the rest failing: failed", time.Second, func() { f.unset("a.test", dnsmessage.TypeA) },
			a + " w10", [4]uint64{1, 4, 1, 0}, time.Second},
		{"every target failing: failed", time.Second, func() {
			f.fail("a.test", false, dnsmessage.RCodeServerFailure)
			f.fail("e.test", true, 0)
		},
			a + " w10", [4]uint64{1, 4, 2, 0}, time.Second},
		{"all back", time.Second, func() {
			for _, n := range []string{"a.test", "b.test", "d.test", "e.test"} {
				f.fail(n, false, dnsmessage.RCodeSuccess)
			}
			f.set("a.test", dnsmessage.TypeA, aRR("a.test", 60, "10.0.0.1"))
		}, b12 + " w30, " + a + " w10, " + b2 + " w30, " + d4 + " w40", [4]uint64{2, 4, 2, 0}, 10 * time.Second},
	} {
		now = now.Add(tc.advance)
		if tc.change != nil {
			tc.change()
		}
		if got := backendList(refreshAll(s)); got != tc.want {
			t.Errorf("%s: backends\n got %s\nwant %s", tc.name, got, tc.want)
		}
		st := s.Stats()[0]
		if got := [4]uint64{st.Succeeded, st.Partial, st.Failed, st.Empty}; got != tc.stats {
			t.Errorf("%s: succeeded, partial, failed, empty %v, want %v", tc.name, got, tc.stats)
		}
		if due := s.lookups[0].due.Sub(now); due != tc.due {
			t.Errorf("%s: asked again after %v, want %v", tc.name, due, tc.due)
		}
	}

	for _, tc := range []struct {
		msg  string
		want int
		has  []string
	}{
		// Once: the same failure at the next lookups is not logged again.
		{sum, 1, []string{`"held":["b.test."]`, `"left_out":["d.test."]`,
			`SRV target b.test.: ` + f.addr.String() + `: answered ServerFailure; SRV target d.test.: ` + f.addr.String() + `: answered Refused`}},
		{"its last addresses are dropped", 1, []string{`"target":"b.test."`, `"max_interval_seconds":10`}},
		{"no SRV target gave an address, and some failed", 1, nil},
		{"every SRV target failed", 1, []string{`"kept":1`}},
		{"DNS lookup works again", 1, []string{`"backends":4`}},
	} {
		if n := log.count(tc.msg); n != tc.want {
			t.Errorf("%d log lines say %q, want %d", n, tc.msg, tc.want)
		}
		line := log.find(tc.msg)
		for _, h := range tc.has {
			if !strings.Contains(line, h) {
				t.Errorf("log line %q lacks %s", line, h)
			}
		}
	}
}
