package admin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/stats"
)

// fakeLifecycle answers with canned results and counts the calls.
type fakeLifecycle struct {
	reload       ReloadResult
	upgrade      UpgradeResult
	reloads, ups int
}

func (f *fakeLifecycle) Reload(context.Context) ReloadResult {
	f.reloads++
	return f.reload
}

func (f *fakeLifecycle) Upgrade(context.Context) UpgradeResult {
	f.ups++
	return f.upgrade
}

func (f *fakeLifecycle) RuntimeState() stats.RuntimeState {
	return stats.RuntimeState{Version: 1, Frontends: []stats.FrontendRuntimeState{{Name: "pg",
		Backends: []stats.BackendRuntimeState{{Name: "a", Address: "10.0.0.1:5432", State: "drain", Weight: 5, ConfiguredWeight: 1}}}}}
}

func TestLifecycleRoutes(t *testing.T) {
	lc := &fakeLifecycle{
		reload: ReloadResult{OK: false, Config: "/etc/splicer/config.toml", Problems: []Problem{{
			File: "/etc/splicer/config.toml", Line: 7, Path: `frontend "pg": strategy`, Message: "bad",
			Text: `/etc/splicer/config.toml:7: frontend "pg": strategy: bad`}}},
		upgrade: UpgradeResult{OK: true, OldPID: 10, NewPID: 11},
	}
	h := newTestServer(newFakeSource(), Options{Lifecycle: lc}).Handler()
	r := do(t, h, http.MethodPost, "/api/v1/reload", "")
	want := `{"ok":false,"config":"/etc/splicer/config.toml","problems":[{"file":"/etc/splicer/config.toml","line":7,` +
		`"path":"frontend \"pg\": strategy","message":"bad","text":"/etc/splicer/config.toml:7: frontend \"pg\": strategy: bad"}],"duration_seconds":0}` + "\n"
	if r.status != http.StatusUnprocessableEntity || r.body != want {
		t.Errorf("refused reload: %d %s", r.status, r.body)
	}
	lc.reload = ReloadResult{OK: true, Config: "c.toml", Changes: map[string]any{"frontends_added": []string{"x"}}}
	if r := do(t, h, http.MethodPost, "/api/v1/reload", ""); r.status != http.StatusOK || !strings.Contains(r.body, `"changes":{"frontends_added":["x"]}`) {
		t.Errorf("reload: %d %s", r.status, r.body)
	}
	if r := do(t, h, http.MethodGet, "/api/v1/reload", ""); r.status != http.StatusMethodNotAllowed || lc.reloads != 2 {
		t.Errorf("GET reload: %d, %d reloads", r.status, lc.reloads)
	}
	if r := do(t, h, http.MethodPost, "/api/v1/upgrade", ""); r.status != http.StatusOK || r.body != `{"ok":true,"old_pid":10,"new_pid":11}`+"\n" {
		t.Errorf("upgrade: %d %s", r.status, r.body)
	}
	lc.upgrade = UpgradeResult{OldPID: 10, Error: "new process exited"}
	if r := do(t, h, http.MethodPost, "/api/v1/upgrade", ""); r.status != http.StatusInternalServerError || !strings.Contains(r.body, `"error":"new process exited"`) {
		t.Errorf("failed upgrade: %d %s", r.status, r.body)
	}
	if r := do(t, h, http.MethodGet, "/api/v1/state", ""); r.status != http.StatusOK ||
		!strings.Contains(r.body, `"backends":[{"name":"a","address":"10.0.0.1:5432","state":"drain","weight":5,"configured_weight":1}]`) {
		t.Errorf("state: %d %s", r.status, r.body)
	}
	// Without a Lifecycle the routes exist and say so.
	bare := newTestServer(newFakeSource(), Options{}).Handler()
	for _, path := range []string{"/api/v1/reload", "/api/v1/upgrade"} {
		if r := do(t, bare, http.MethodPost, path, ""); r.status != http.StatusNotImplemented {
			t.Errorf("%s without a lifecycle: %d", path, r.status)
		}
	}
}

// The CLI prints the problems of a refused reload and fails; a successful
// one prints what changed.
func TestRunReloadAndUpgrade(t *testing.T) {
	lc := &fakeLifecycle{reload: ReloadResult{Problems: []Problem{{Text: "c.toml:3: global.workers: must be between 0 and 1024, got -1"}}}}
	ts := httptest.NewServer(newTestServer(newFakeSource(), Options{Lifecycle: lc}).Handler())
	defer ts.Close()
	var out bytes.Buffer
	tok := tokenFile(t, adminToken)
	err := RunReload(context.Background(), []string{"-admin", ts.URL, "-token-file", tok}, &out)
	if err == nil || out.String() != "c.toml:3: global.workers: must be between 0 and 1024, got -1\n" {
		t.Errorf("refused: %v, %q", err, out.String())
	}
	lc.reload = ReloadResult{OK: true, Config: "c.toml", Seconds: 0.002, Changes: map[string]any{"frontends_removed": []string{"old"}}}
	out.Reset()
	if err := RunReload(context.Background(), []string{"-admin", ts.URL, "-token-file", tok}, &out); err != nil ||
		out.String() != `reloaded c.toml in 0.002s: {"frontends_removed":["old"]}`+"\n" {
		t.Errorf("reload: %v, %q", err, out.String())
	}
	lc.upgrade = UpgradeResult{OK: true, OldPID: 10, NewPID: 11}
	out.Reset()
	if err := RunUpgrade(context.Background(), []string{"-admin", ts.URL, "-token-file", tok}, &out); err != nil ||
		out.String() != "upgraded: pid 11 now serves; pid 10 drains its connections and exits\n" {
		t.Errorf("upgrade: %v, %q", err, out.String())
	}
	if err := RunReload(context.Background(), []string{"-admin", ts.URL, "-token-file", tok, "extra"}, &out); err == nil {
		t.Error("an extra argument was accepted")
	}
	// An operator may not reload: only the admin role.
	err = RunReload(context.Background(), []string{"-admin", ts.URL, "-token-file", tokenFile(t, operatorToken)}, &out)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden {
		t.Errorf("reload as an operator: %v, want 403", err)
	}
}
