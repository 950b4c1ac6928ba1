package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestStateFileKeepsMaintAcrossRestartAndUpgrade (issue 14, runtime state):
// maint, drain and a runtime weight set through the CLI come back after a
// restart, and the process started by `splicer upgrade` loads the same
// state file: after the old process is gone, the new one serves with e0
// in maint, e1 draining and e2 at weight 7, and logs that it restored 3
// entries.
func TestStateFileKeepsMaintAcrossRestartAndUpgrade(t *testing.T) {
	dir := t.TempDir()
	e0, e1, e2 := startEcho(t), startEcho(t), startEcho(t)
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, 5*time.Second)+
		frontendConfig("main", front, "", be{"e0", e0.addr, 1}, be{"e1", e1.addr, 1}, be{"e2", e2.addr, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	for _, args := range [][]string{{"maint", "main", "e0"}, {"drain", "main", "e1"}, {"weight", "main", "e2", "7"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"backend", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, args...), &out, &errOut); code != exitOK {
			t.Fatalf("splicer backend %v: %d %s", args, code, errOut.String())
		}
	}
	check := func(p *proc, when string) {
		t.Helper()
		st := p.stats()
		b0, _ := backendOf(st, "main", "e0")
		b1, _ := backendOf(st, "main", "e1")
		b2, _ := backendOf(st, "main", "e2")
		if b0.State != "maint" || b1.State != "drain" || b2.State != "ready" || b2.Weight != 7 {
			t.Errorf("%s: e0 %s, e1 %s, e2 %s weight %d; want maint, drain, ready weight 7", when, b0.State, b1.State, b2.State, b2.Weight)
		}
	}
	check(p, "before the restart")
	p.stop()

	p = startSplicer(t, testBinary(t), path, adminAddr)
	check(p, "after the restart")
	if rec := p.logRecord("runtime backend state restored"); rec == nil || rec["applied"] != float64(3) || rec["ignored"] != float64(0) {
		t.Errorf("restart: state restored %v, want applied 3, ignored 0", rec)
	}
	serves := func(p *proc, when string) {
		t.Helper()
		// Only e2 serves: e0 in maint and e1 draining take no new client.
		for range 3 {
			echoOnce(t, front)
		}
		st := p.stats()
		b0, _ := backendOf(st, "main", "e0")
		b1, _ := backendOf(st, "main", "e1")
		b2, _ := backendOf(st, "main", "e2")
		if b0.Total != 0 || b1.Total != 0 || b2.Total < 3 {
			t.Errorf("%s: e0 (maint) took %d clients, e1 (drain) %d, e2 %d; want 0, 0, at least 3", when, b0.Total, b1.Total, b2.Total)
		}
	}
	serves(p, "after the restart")

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"upgrade", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut); code != exitOK {
		t.Fatalf("splicer upgrade: exit %d: %s%s", code, out.String(), errOut.String())
	}
	p.waitLog(15*time.Second, "splicer started", 2)
	if code, ok := p.exited(10 * time.Second); !ok || code != 0 {
		t.Fatalf("the old process: exited %v, code %d", ok, code)
	}
	pids := startedPIDs(p)
	// The new process logged its own restore: the second in the shared log.
	n := 0
	for _, rec := range p.records() {
		if rec["message"] == "runtime backend state restored" {
			n++
			if n == 2 && (rec["applied"] != float64(3) || rec["ignored"] != float64(0)) {
				t.Errorf("upgrade: state restored %v, want applied 3, ignored 0", rec)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d state restores logged, want 2 (the restart's and the upgrade's); pids %v", n, pids)
	}
	testutil.WaitFor(t, 10*time.Second, "the new process answering the admin port", func() bool {
		return len(p.stats().Frontends) == 1
	})
	check(p, "after the upgrade")
	serves(p, "after the upgrade")
}
