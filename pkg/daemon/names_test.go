package daemon

import (
	"errors"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/history"
	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestStatsNamesMatchTheirOwners: pkg/stats repeats names that belong to
// other packages (it imports none of ours, so that the admin API and the
// metrics read it alone). Each list must say exactly what its owner says:
// a state, reason or cause added or renamed there fails here until stats
// follows.
func TestStatsNamesMatchTheirOwners(t *testing.T) {
	var states []string
	for s := backend.Ready; s <= backend.Maint; s++ {
		states = append(states, s.String())
	}
	if got := stats.States(); !slices.Equal(got, states) {
		t.Errorf("stats.States() = %v, backend's states are %v", got, states)
	}

	var fails []string
	for r := range backend.NumFailReasons {
		fails = append(fails, backend.FailReason(r).String())
	}
	if got := stats.ConnectFailureReasons(); !slices.Equal(got, fails) {
		t.Errorf("stats.ConnectFailureReasons() = %v, backend's reasons are %v", got, fails)
	}

	var drops []string
	for r := range l4.NumDropReasons {
		drops = append(drops, l4.DropReason(r).String())
	}
	if got := stats.DropReasons(); !slices.Equal(got, drops) {
		t.Errorf("stats.DropReasons() = %v, l4's drop reasons are %v", got, drops)
	}

	// A refusal is a connection that ended with one of the causes that
	// turn a client away: the key is the cause's name.
	refusals := []l4.Cause{l4.CauseNoBackend, l4.CauseConnectFailed, l4.CauseQueueFull, l4.CauseQueueTimeout,
		l4.CauseDenied, l4.CauseClientLimit, l4.CauseRateLimit}
	var names []string
	for _, c := range refusals {
		names = append(names, c.String())
	}
	if got := stats.RefusalReasons(); !slices.Equal(got, names) {
		t.Errorf("stats.RefusalReasons() = %v, the causes' names are %v", got, names)
	}
	for _, proto := range []string{"tcp", "udp"} {
		if n := len(stats.FrontendErrorKinds(proto)); n > history.MaxErrorKinds {
			t.Errorf("%s frontends have %d error kinds, the history keeps %d", proto, n, history.MaxErrorKinds)
		}
	}
	if n := len(stats.BackendErrorKinds()); n > history.MaxErrorKinds {
		t.Errorf("backends have %d error kinds, the history keeps %d", n, history.MaxErrorKinds)
	}
}

// TestRefusedByCause: a client whose every connect failed is counted under
// refused["connect_failed"], one no backend could take under
// refused["no_backend"], each once, and both in rejected.
func TestRefusedByCause(t *testing.T) {
	dead := testutil.RefusedAddr(t, "tcp")
	cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").Retries(0).
		Backend(dead.String(), 1).HealthCheck(config.CheckNone).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := frontAddr(t, d)
	client := func() {
		t.Helper()
		c, err := net.Dial("tcp", front)
		if errors.Is(err, syscall.ECONNRESET) {
			return // the reset came before the dial returned
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err == nil {
			t.Fatal("a client nobody served saw a clean end, want a reset")
		}
	}
	src := &source{d: d}
	refused := func() map[string]uint64 { return src.Stats().Frontends[0].Refused }
	client()
	testutil.WaitFor(t, 5*time.Second, "the failed connect counted", func() bool { return refused()["connect_failed"] == 1 })
	if err := d.srv.Backends("t")[0].SetState(backend.Drain); err != nil {
		t.Fatal(err)
	}
	client()
	testutil.WaitFor(t, 5*time.Second, "the client without a backend counted", func() bool { return refused()["no_backend"] == 1 })
	fe := src.Stats().Frontends[0]
	want := map[string]uint64{"no_backend": 1, "connect_failed": 1}
	for _, k := range stats.RefusalReasons() {
		if fe.Refused[k] != want[k] {
			t.Errorf("refused[%q] = %d, want %d (all: %v)", k, fe.Refused[k], want[k], fe.Refused)
		}
	}
	if len(fe.Refused) != len(stats.RefusalReasons()) || fe.Rejected != 2 {
		t.Errorf("refused %v, rejected %d; want every reason's key and 2 rejected", fe.Refused, fe.Rejected)
	}
}
