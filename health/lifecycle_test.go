package health

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestRemovedPrimaryForgotten: of two servers that both answer as
// primary, the second listed stays out, superseded; once a reload removes
// the first from the set, its claim goes with it and the second comes in.
func TestRemovedPrimaryForgotten(t *testing.T) {
	r := newRoles()
	bs, s, ts := primaryScheduler(t, r, 2)
	a, b := bs[0], bs[1]
	r.set(a.Address(), config.RolePrimary, 0)
	r.set(b.Address(), config.RolePrimary, 0)
	start(t, s)
	testutil.WaitFor(t, 20*time.Second, "the second primary out", func() bool { return a.Healthy() && !b.Healthy() && len(ts.of(b)) == 1 })
	if err := s.SetBackends([]*backend.Backend{b}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "the remaining primary in", func() bool { return b.Healthy() })
	if got := ts.of(b); len(got) != 2 || !got[1].up {
		t.Fatalf("transitions of the remaining primary %+v, want down then up", got)
	}
}

// TestNewPassiveRefusesTiming: a passive-only scheduler is held to the
// same timing rules as a probing one.
func TestNewPassiveRefusesTiming(t *testing.T) {
	h := config.Health{PassiveFall: 1, Rise: 1, Fall: 1}
	_, err := NewPassive(h, nil, nil, zerolog.Nop())
	if want := "health intervals and timeout must be positive: invalid health check"; err == nil || err.Error() != want || !errors.Is(err, ErrConfig) {
		t.Fatalf("NewPassive = %v, want %q", err, want)
	}
}

// TestReportsOnForeignBackends: the data plane's reports about a backend
// the scheduler does not watch (one a reload just removed) change
// nothing.
func TestReportsOnForeignBackends(t *testing.T) {
	h := fastHealth(time.Hour)
	h.PassiveFall = 1
	mine := newBackend(t, netip.MustParseAddrPort("127.0.0.1:7101"))
	other := newBackend(t, netip.MustParseAddrPort("127.0.0.1:7102"))
	s, err := New(h, checkerFunc(func(context.Context, netip.AddrPort) Result { return Result{OK: true} }), []*backend.Backend{mine}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.State(mine)
	s.ReportFailure(other, "connect refused")
	s.ReportSuccess(other)
	if _, ok := s.State(other); ok {
		t.Fatal("a foreign backend is known after reports about it")
	}
	if after, _ := s.State(mine); after != before || !mine.Healthy() || !other.Healthy() {
		t.Fatalf("reports on a foreign backend changed state: %+v -> %+v, healthy %v %v", before, after, mine.Healthy(), other.Healthy())
	}
}

// TestInheritOnlyBeforeRun: a scheduler inherits nothing from no
// predecessor, and nothing once it runs (its own probes rule by then).
func TestInheritOnlyBeforeRun(t *testing.T) {
	h := fastHealth(10 * time.Millisecond)
	h.PassiveFall = 5
	b := newBackend(t, netip.MustParseAddrPort("127.0.0.1:7103"))
	refused := checkerFunc(func(context.Context, netip.AddrPort) Result { return Result{Msg: "refused"} })
	prev, err := New(h, refused, []*backend.Backend{b}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	prev.ReportFailure(b, "connect refused")
	prev.ReportFailure(b, "connect refused")

	blocked := make(chan struct{})
	slow := checkerFunc(func(ctx context.Context, _ netip.AddrPort) Result {
		select {
		case <-blocked:
		case <-ctx.Done():
		}
		return Result{OK: true, Msg: "ok"}
	})
	s, err := New(h, slow, []*backend.Backend{b}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := s.State(b)
	s.Inherit(nil)
	s.InheritCounters(nil)
	if got, _ := s.State(b); got != fresh {
		t.Fatalf("Inherit(nil) changed the state: %+v -> %+v", fresh, got)
	}
	stop := start(t, s)
	defer stop()
	defer close(blocked)
	testutil.WaitFor(t, 20*time.Second, "the scheduler started", s.started.Load)
	s.Inherit(prev)
	s.InheritCounters(prev)
	if got, _ := s.State(b); got.PassiveFailures != 0 || strings.Contains(got.Last.Msg, "refused") {
		t.Fatalf("a running scheduler inherited %+v", got)
	}
}
