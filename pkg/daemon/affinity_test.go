package daemon

import (
	"context"
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
)

// TestReloadRefusesCPUAffinityChange: pinning threads and steering sockets
// is set up when the loops start, so a reload that changes
// global.cpu_affinity is refused, naming the key and the way to apply it,
// and the old config serves on; a reload that keeps it goes through.
func TestReloadRefusesCPUAffinityChange(t *testing.T) {
	back := startDemo(t)
	runtimeDir := t.TempDir()
	build := func(affinity string) *config.Config {
		cfg, err := config.New().Workers(2).CPUAffinity(affinity).RuntimeDir(runtimeDir).StateFile("").AdminListen("").
			Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var next configs
	d := runWith(t, build(""), Options{Load: next.load})

	next.set(build("auto"))
	out := d.Reload(context.Background())
	want := `global.cpu_affinity: changed from "" to "auto", which a reload cannot apply; run "splicer upgrade" (no connection is lost) or restart`
	if out.OK || len(out.Problems) != 1 || out.Problems[0].String() != want {
		t.Fatalf("reload to auto: ok %v, problems %v; want one: %s", out.OK, out.Problems, want)
	}
	if got := d.config().Global.CPUAffinity; got.Enabled() {
		t.Errorf("after a refused reload the daemon runs with cpu_affinity %q", got)
	}

	next.set(build(""))
	if out := d.Reload(context.Background()); !out.OK {
		t.Errorf("a reload keeping cpu_affinity: %v", out.Problems)
	}
}
