package daemon

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// TestSourceRefusals asks the admin API's source for what does not exist
// or cannot be: each refusal names the frontend, backend or connection,
// with the sentinel the admin API maps to 404 or 400, and changes nothing.
func TestSourceRefusals(t *testing.T) {
	back := startDemo(t)
	cfg, err := config.New().AdminListen("").RuntimeDir(t.TempDir()).
		Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 3).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{})
	src := &source{d: d}
	name := back.Addr().String()
	_, _, connsErr := src.Connections("x", 0, 10)
	tests := []struct {
		what string
		err  error
		is   error
		want string
	}{
		{"state of an unknown frontend", src.SetState("x", name, "drain"), admin.ErrNotFound, `frontend "x": not found`},
		{"state of an unknown backend", src.SetState("t", "nobody", "drain"), admin.ErrNotFound, `frontend "t" has no backend "nobody": not found`},
		{"an unknown state", src.SetState("t", name, "asleep"), admin.ErrInvalid,
			`invalid request: unknown backend state "asleep" (want ready, drain or maint): invalid backend`},
		{"weight of an unknown backend", src.SetWeight("t", "nobody", 2), admin.ErrNotFound, `frontend "t" has no backend "nobody": not found`},
		{"a weight out of range", src.SetWeight("t", name, 0), admin.ErrInvalid,
			`invalid request: backend "` + name + `": weight 0 outside 1..256: invalid backend`},
		{"connections of an unknown frontend", connsErr, admin.ErrNotFound, `frontend "x": not found`},
		{"closing an unknown connection", src.CloseConnection(12345), admin.ErrNotFound, "connection 12345: not found"},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.is) || tc.err.Error() != tc.want {
			t.Errorf("%s: %v\nwant %s", tc.what, tc.err, tc.want)
		}
	}
	b := d.srv.Backends("t")[0]
	if b.State() != backend.Ready || b.Weight() != 3 {
		t.Errorf("the refusals changed the backend: %v, weight %d", b.State(), b.Weight())
	}
	// The runtime state is what the state file would hold.
	st := src.RuntimeState()
	if len(st.Frontends) != 1 || len(st.Frontends[0].Backends) != 1 || st.Frontends[0].Backends[0].Weight != 3 ||
		st.Frontends[0].Backends[0].State != "ready" || st.Frontends[0].Backends[0].Address != name {
		t.Errorf("runtime state %+v", st)
	}
	// No command line: an upgrade is refused, and says why.
	if res := src.Upgrade(context.Background()); res.OK || res.OldPID == 0 || res.NewPID != 0 ||
		res.Error != "upgrade is not available: the daemon was not given its command line" {
		t.Errorf("upgrade: %+v", res)
	}
	if !src.Ready() {
		t.Error("a serving daemon is not ready")
	}
}

// TestSourceReload reloads through the admin API's source: a config that
// fails comes back as problems with their text, and the old config serves;
// one that loads comes back with its changes.
func TestSourceReload(t *testing.T) {
	a, b := startDemo(t), startDemo(t)
	runtimeDir := t.TempDir()
	build := func(backs ...string) *config.Config {
		fb := config.New().AdminListen("").RuntimeDir(runtimeDir).Frontend("t").Listen("127.0.0.1:0").HealthCheck("none")
		for _, addr := range backs {
			fb = fb.Backend(addr, 1)
		}
		cfg, err := fb.Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var next configs
	broken := &config.Error{Problems: []config.Problem{{File: "/etc/splicer/config.toml", Line: 7, Path: "frontend.listen", Msg: "no"}}}
	fail := true
	d := runWith(t, build(a.Addr().String()), Options{Load: func() (*config.Config, error) {
		if fail {
			return nil, broken
		}
		return next.load()
	}})
	src := &source{d: d}
	res := src.Reload(context.Background())
	if res.OK || len(res.Problems) != 1 || res.Changes != nil {
		t.Fatalf("reload of a broken config: %+v", res)
	}
	if p := res.Problems[0]; p.File != "/etc/splicer/config.toml" || p.Line != 7 || p.Path != "frontend.listen" || p.Message != "no" ||
		p.Text != "/etc/splicer/config.toml:7: frontend.listen: no" {
		t.Errorf("problem %+v", p)
	}
	if len(d.srv.Backends("t")) != 1 {
		t.Error("a failed reload changed the backends")
	}
	fail = false
	next.set(build(a.Addr().String(), b.Addr().String()))
	res = src.Reload(context.Background())
	if !res.OK || res.Seconds <= 0 || res.Seconds > 10 || len(res.Problems) != 0 {
		t.Fatalf("reload: %+v", res)
	}
	if added := res.Changes.(l4.Change).Backends["t"].Added; len(added) != 1 || added[0] != b.Addr().String() {
		t.Errorf("changes %+v", res.Changes)
	}
}

// TestChangesRefusedWhenNotServing: a daemon built but not yet running
// refuses reloads, upgrades and backend changes, saying it is not serving.
func TestChangesRefusedWhenNotServing(t *testing.T) {
	cfg, err := config.New().AdminListen("").RuntimeDir(t.TempDir()).
		Frontend("t").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, zerolog.Nop(), Options{Args: []string{"splicer"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.srv.Close()
	const want = "the daemon is not serving (starting, or stopping)"
	if out := d.Reload(context.Background()); out.OK || len(out.Problems) != 1 || out.Problems[0].Msg != want {
		t.Errorf("reload: %+v", out)
	}
	if out := d.Upgrade(context.Background()); out.OK || !errors.Is(out.Err, errNotServing) || out.Err.Error() != want {
		t.Errorf("upgrade: %+v", out)
	}
	spec := backend.Spec{Address: netip.MustParseAddrPort("127.0.0.1:2"), Weight: 1}
	if _, err := d.SetBackends(context.Background(), "t", []backend.Spec{spec}); !errors.Is(err, errNotServing) {
		t.Errorf("SetBackends: %v", err)
	}
}
