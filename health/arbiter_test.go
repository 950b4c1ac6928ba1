package health

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// roles is a fake role probe: each address answers the role and epoch set
// for it, or fails with "connect: connection refused" when set to "down".
type roles struct {
	mu    sync.Mutex
	state map[netip.AddrPort]roleState
}

type roleState struct {
	role  string // config.RolePrimary, config.RoleReplica or "down"
	epoch uint64
}

func newRoles() *roles { return &roles{state: make(map[netip.AddrPort]roleState)} }

func (r *roles) set(addr netip.AddrPort, role string, epoch uint64) {
	r.mu.Lock()
	r.state[addr] = roleState{role, epoch}
	r.mu.Unlock()
}

// Check answers as a postgres role probe with role = "primary" would.
func (r *roles) Check(_ context.Context, addr netip.AddrPort) Result {
	r.mu.Lock()
	st := r.state[addr]
	r.mu.Unlock()
	prefix := "fake probe " + addr.String() + ": "
	switch st.role {
	case config.RolePrimary:
		return Result{OK: true, Msg: prefix + "primary", Role: config.RolePrimary, Epoch: st.epoch, Duration: time.Millisecond}
	case config.RoleReplica:
		return Result{Msg: prefix + "replica, want primary", Duration: time.Millisecond}
	}
	return Result{Msg: prefix + "connect: connection refused", Duration: time.Millisecond}
}

// primaryScheduler runs a role = "primary" scheduler over n backends probed
// by r every 10 ms, rise 2, fall 3.
func primaryScheduler(t *testing.T, r *roles, n int) ([]*backend.Backend, *Scheduler, *transitions) {
	t.Helper()
	h := fastHealth(10 * time.Millisecond)
	h.Role = config.RolePrimary
	var bs []*backend.Backend
	for i := range n {
		bs = append(bs, newBackend(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(6001+i))))
	}
	ts := newTransitions(nil)
	s, err := New(h, r, bs, ts.onChange, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return bs, s, ts
}

// tenMore waits for ten more probes of b: time for it to change, counted
// in probes rather than slept.
func tenMore(t *testing.T, s *Scheduler, b *backend.Backend) {
	t.Helper()
	st, _ := s.State(b)
	testutil.WaitFor(t, 20*time.Second, "ten more probes of "+b.Name(), func() bool {
		now, _ := s.State(b)
		return now.Probes >= st.Probes+10
	})
}

// lastMsg is b's latest probe message.
func lastMsg(s *Scheduler, b *backend.Backend) string {
	st, _ := s.State(b)
	return st.Last.Msg
}

// TestPromotionSupersedes: the old primary leaves the moment the promoted
// replica comes up, not a fall streak later, and stays out while it still
// answers as primary.
func TestPromotionSupersedes(t *testing.T) {
	r := newRoles()
	bs, s, ts := primaryScheduler(t, r, 2)
	a, b := bs[0], bs[1]
	r.set(a.Address(), config.RolePrimary, 0)
	r.set(b.Address(), config.RoleReplica, 0)
	start(t, s)
	testutil.WaitFor(t, 20*time.Second, "the replica out", func() bool { return !b.Healthy() })

	r.set(b.Address(), config.RolePrimary, 0) // promoted; a still runs as primary
	testutil.WaitFor(t, 20*time.Second, "the promoted replica in", func() bool { return b.Healthy() })
	if a.Healthy() {
		// Demotion goes through a's goroutine; give it a moment.
		testutil.WaitFor(t, 20*time.Second, "the old primary out", func() bool { return !a.Healthy() })
	}
	got := ts.of(a)
	// Taken down by the arbiter at b's promotion ("superseded: ..."), or
	// by a's own next probe if that came first ("...: primary;
	// superseded: ..."): either way once, and for that reason.
	if len(got) != 1 || got[0].up || !strings.HasSuffix(got[0].msg, "superseded: "+b.Name()+" became primary later") {
		t.Fatalf("old primary's transitions %+v, want one down, superseded by %s", got, b.Name())
	}
	want := "fake probe " + a.Address().String() + ": primary; superseded: " + b.Name() + " became primary later"
	testutil.WaitFor(t, 20*time.Second, "the old primary's probes to say "+want, func() bool { return lastMsg(s, a) == want })
	tenMore(t, s, a) // a stays out
	if a.Healthy() || len(ts.of(a)) != 1 {
		t.Fatalf("old primary back: healthy %v, transitions %+v", a.Healthy(), ts.of(a))
	}
}

// TestTimelineDecides: a later timeline wins whatever the order, and an
// older one stays out as stale even when the newer primary dies.
func TestTimelineDecides(t *testing.T) {
	r := newRoles()
	bs, s, ts := primaryScheduler(t, r, 2)
	a, b := bs[0], bs[1]
	r.set(a.Address(), config.RolePrimary, 1)
	r.set(b.Address(), config.RolePrimary, 2)
	start(t, s)
	testutil.WaitFor(t, 20*time.Second, "the timeline 1 primary out", func() bool { return !a.Healthy() })
	if !b.Healthy() {
		t.Fatal("the timeline 2 primary is down")
	}
	// Whichever was probed first, a goes down once, superseded or stale.
	got := ts.of(a)
	if len(got) != 1 || !strings.HasSuffix(got[0].msg, "superseded: "+b.Name()+" is primary on a later timeline (2)") &&
		!strings.HasSuffix(got[0].msg, "stale: a primary on timeline 2 was seen, this one is on 1") {
		t.Fatalf("transitions %+v", got)
	}
	r.set(b.Address(), "down", 0)
	testutil.WaitFor(t, 20*time.Second, "the timeline 2 primary down", func() bool { return !b.Healthy() })
	want := "fake probe " + a.Address().String() + ": primary; stale: a primary on timeline 2 was seen, this one is on 1"
	testutil.WaitFor(t, 20*time.Second, "a stale message", func() bool { return lastMsg(s, a) == want })
	tenMore(t, s, a)
	if a.Healthy() {
		t.Fatal("a stale primary came back")
	}
	// The promoted server comes back: it is the primary again.
	r.set(b.Address(), config.RolePrimary, 2)
	testutil.WaitFor(t, 20*time.Second, "the timeline 2 primary back", func() bool { return b.Healthy() })
}

// TestTwoPrimariesAtStart: with no history the first listed wins at once.
func TestTwoPrimariesAtStart(t *testing.T) {
	r := newRoles()
	bs, s, ts := primaryScheduler(t, r, 2)
	a, b := bs[0], bs[1]
	r.set(a.Address(), config.RolePrimary, 0)
	r.set(b.Address(), config.RolePrimary, 0)
	start(t, s)
	testutil.WaitFor(t, 20*time.Second, "one primary out", func() bool { return !a.Healthy() || !b.Healthy() })
	testutil.WaitFor(t, 20*time.Second, "the first listed in and the second out", func() bool {
		return a.Healthy() && !b.Healthy() && len(ts.of(b)) == 1 && len(ts.of(a)) == 0
	})
	if msg := ts.of(b)[0].msg; !strings.HasSuffix(msg, "superseded: "+a.Name()+", listed first, is primary too") {
		t.Fatalf("second primary went down with %q", msg)
	}
}

// TestSetBackends: a backend added while Run runs is probed; one removed
// is no longer probed, reported nor known to State.
func TestSetBackends(t *testing.T) {
	calls := make(map[netip.AddrPort]int)
	var mu sync.Mutex
	c := checkerFunc(func(_ context.Context, addr netip.AddrPort) Result {
		mu.Lock()
		calls[addr]++
		mu.Unlock()
		return Result{OK: true, Msg: "ok", Duration: time.Millisecond}
	})
	count := func(b *backend.Backend) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[b.Address()]
	}
	h := fastHealth(10 * time.Millisecond)
	h.PassiveFall = 1
	a := newBackend(t, netip.MustParseAddrPort("127.0.0.1:7001"))
	b := newBackend(t, netip.MustParseAddrPort("127.0.0.1:7002"))
	s, err := New(h, c, []*backend.Backend{a}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	testutil.WaitFor(t, 20*time.Second, "a probed", func() bool { return count(a) > 2 })
	if err := s.SetBackends([]*backend.Backend{a, b, a}); err == nil {
		t.Fatal("SetBackends accepted a backend twice")
	}
	if err := s.SetBackends([]*backend.Backend{b}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "b probed", func() bool { return count(b) > 2 })
	if _, ok := s.State(a); ok {
		t.Error("State knows a removed backend")
	}
	s.ReportFailure(a, "reset")
	if !a.Healthy() {
		t.Error("a passive report on a removed backend took it down")
	}
	n, nb := count(a), count(b)
	testutil.WaitFor(t, 20*time.Second, "five more probes of b", func() bool { return count(b) >= nb+5 })
	if count(a) != n {
		t.Errorf("a removed backend is still probed: %d probes, then %d", n, count(a))
	}
	s.ReportFailure(b, "reset")
	testutil.WaitFor(t, 20*time.Second, "b down by passive report", func() bool { return !b.Healthy() })
}
