package health

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestInheritCarriesStreaks builds up two failures of fall 3 on a backend,
// stops the scheduler and starts a new one for the same backend and a new
// one, as a reload does: the streak carries over, so one more failure takes
// the backend down; the new backend starts fresh.
func TestInheritCarriesStreaks(t *testing.T) {
	kept := newBackend(t, netip.MustParseAddrPort("127.0.0.1:1"))
	added := newBackend(t, netip.MustParseAddrPort("127.0.0.1:2"))
	h := fastHealth(10 * time.Millisecond)
	h.Timeout = time.Hour
	h.PassiveFall = 5
	var calls atomic.Int32
	first := checkerFunc(func(ctx context.Context, _ netip.AddrPort) Result {
		if calls.Add(1) <= 2 {
			return Result{Msg: "refused"}
		}
		<-ctx.Done() // the third probe is cut by the stop: no result
		return Result{Msg: "cut"}
	})
	s1, err := New(h, first, []*backend.Backend{kept}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s1)
	testutil.WaitFor(t, 20*time.Second, "two failed probes", func() bool { st, _ := s1.State(kept); return st.Failures == 2 })
	s1.ReportFailure(kept, "connect refused")
	stop()
	before, _ := s1.State(kept)

	rec := newRecorder(checkerFunc(func(context.Context, netip.AddrPort) Result { return Result{Msg: "still refused"} }))
	ts := newTransitions(rec)
	s2, err := New(h, rec, []*backend.Backend{kept, added}, ts.onChange, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s2.Inherit(s1)
	got, _ := s2.State(kept)
	if got != before || !got.Up || got.Failures != 2 || got.Last.Msg != "refused" || got.PassiveFailures != 1 {
		t.Fatalf("inherited state %+v, want %+v", got, before)
	}
	if st, _ := s2.State(added); st.Failures != 0 || !st.LastCheck.IsZero() {
		t.Fatalf("a new backend inherited %+v", st)
	}
	start(t, s2)
	testutil.WaitFor(t, 20*time.Second, "the kept backend down", func() bool { return len(ts.of(kept)) == 1 })
	if tr := ts.of(kept)[0]; tr.up || tr.probes != 1 {
		t.Errorf("transition %+v, want down on the first probe of the new scheduler", tr)
	}
}
