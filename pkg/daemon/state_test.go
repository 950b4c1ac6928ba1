package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// stateConfig is a config with the state file path and frontend "t" on
// backends a (weight 1) and b (weight 2).
func stateConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.New().RuntimeDir(t.TempDir()).StateFile(path).AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).BackendOpts(config.BackendOptions{Name: "a"}).
		Backend("127.0.0.1:2", 2).BackendOpts(config.BackendOptions{Name: "b"}).
		HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestStateFileLoad starts daemons on state files an operator may find:
// missing, unreadable, corrupt, of another version, foreign or stale in
// parts. The daemon starts each time, applies what matches its config,
// and logs what it ignored and why.
func TestStateFileLoad(t *testing.T) {
	entry := func(fe, name, addr, state string, weight, configured int) string {
		return fmt.Sprintf(`{"name":%q,"backends":[{"name":%q,"address":%q,"state":%q,"weight":%d,"configured_weight":%d}]}`,
			fe, name, addr, state, weight, configured)
	}
	doc := func(version int, frontends ...string) string {
		return fmt.Sprintf(`{"version":%d,"written_at":"2026-12-05T10:00:00Z","frontends":[%s]}`, version, strings.Join(frontends, ","))
	}
	tests := []struct {
		name    string
		content string   // "" for no file; "dir" for a directory
		want    string   // in the log
		a, b    string   // the backends' state and weight after the start
		also    []string // more lines of the log
	}{
		{"no file", "", `"message":"no state file yet: starting with the configured backend states"`, "ready/1", "ready/2", nil},
		{"a directory", "dir", `"error":"read %s: is a directory","state_file":"%s","message":"state file ignored: starting with the configured backend states"`, "ready/1", "ready/2", nil},
		{"corrupt", `{"version":1,"frontends":[`, `"error":"corrupt: unexpected EOF"`, "ready/1", "ready/2", nil},
		{"unknown field", `{"version":1,"colour":"blue"}`, `"error":"corrupt: json: unknown field \"colour\""`, "ready/1", "ready/2", nil},
		{"another version", doc(stats.RuntimeStateVersion + 1), fmt.Sprintf(`"error":"version %d, this splicer reads version %d"`, stats.RuntimeStateVersion+1, stats.RuntimeStateVersion), "ready/1", "ready/2", nil},
		{"applied", doc(stats.RuntimeStateVersion, entry("t", "a", "127.0.0.1:1", "drain", 5, 1)),
			`"applied":1,"ignored":0,"message":"runtime backend state restored"`, "drain/5", "ready/2", nil},
		{"stale and foreign", doc(stats.RuntimeStateVersion,
			entry("gone", "a", "127.0.0.1:1", "maint", 1, 1), // a frontend no longer configured
			entry("t", "c", "127.0.0.1:3", "maint", 1, 1),    // a backend no longer configured
			entry("t", "a", "127.0.0.1:9", "maint", 1, 1),    // a's address changed
			entry("t", "b", "127.0.0.1:2", "maint", 7, 3)),   // b's configured weight changed: the state stays, the weight goes
			`"applied":1,"ignored":3,"message":"runtime backend state restored"`, "ready/1", "maint/2", nil},
		{"bad entries", doc(stats.RuntimeStateVersion,
			entry("t", "a", "127.0.0.1:1", "asleep", 1, 1),
			entry("t", "b", "127.0.0.1:2", "drain", 1000, 2)), // b's weight is out of range: its drain is not applied either
			`"error":"unknown backend state \"asleep\" (want ready, drain or maint): invalid backend","frontend":"t","backend":"a","message":"state file entry ignored"`,
			"ready/1", "ready/2", []string{
				`"error":"backend \"b\": weight 1000 outside 1..256: invalid backend","frontend":"t","backend":"b","message":"state file entry ignored"`,
				`"applied":0,"ignored":2,"message":"runtime backend state restored"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			switch tc.content {
			case "":
			case "dir":
				os.Mkdir(path, 0o755)
				tc.want = fmt.Sprintf(tc.want, path, path)
			default:
				if err := os.WriteFile(path, []byte(tc.content), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			var logs testutil.SyncBuffer
			d, _ := runLogged(t, stateConfig(t, path), &logs, Options{})
			for _, want := range append([]string{tc.want}, tc.also...) {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %s:\n%s", want, logs.String())
				}
			}
			bs := d.srv.Backends("t")
			for i, want := range []string{tc.a, tc.b} {
				if got := fmt.Sprintf("%v/%d", bs[i].State(), bs[i].Weight()); got != want {
					t.Errorf("backend %s: %s, want %s", bs[i].Name(), got, want)
				}
			}
		})
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory for the
// test, with options; it skips unless this process may mount.
func mountTmpfs(t *testing.T, size int, options string) string {
	t.Helper()
	dir := t.TempDir()
	data := fmt.Sprintf("size=%d", size)
	if options != "" {
		data += "," + options
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, data); err != nil {
		t.Skipf("mounting a tmpfs needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestStateFileOnAFailingFileSystem changes a backend at runtime while the
// state file's file system is full, then read-only: the change is made and
// serves, the error is logged with the file, and the old file stays whole
// with no temporary file left; once there is room again, the next change
// is written.
func TestStateFileOnAFailingFileSystem(t *testing.T) {
	dir := mountTmpfs(t, 64<<10, "mode=0755")
	path := filepath.Join(dir, "state.json")
	var logs testutil.SyncBuffer
	d, _ := runLogged(t, stateConfig(t, path), &logs, Options{})
	src := &source{d: d}
	if err := src.SetState("t", "a", "drain"); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(good), `"state": "drain"`) {
		t.Fatalf("state file %q, %v", good, err)
	}
	fillUp(t, filepath.Join(dir, "filler"))
	check := func(what, wantErr string) {
		t.Helper()
		if now, err := os.ReadFile(path); err != nil || string(now) != string(good) {
			t.Errorf("%s: the state file holds %q, %v; want the old %q", what, now, err, good)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("%s: temporary file %s left behind", what, e.Name())
			}
		}
		want := `"error":"` + wantErr
		if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(),
			`"state_file":"`+path+`","message":"cannot write the state file: runtime backend changes will not survive a restart"`) {
			t.Errorf("%s: log lacks %s:\n%s", what, want, logs.String())
		}
	}
	if err := src.SetWeight("t", "b", 9); err != nil {
		t.Fatalf("a change on a full file system: %v", err)
	}
	if b := d.srv.Backends("t")[1]; b.Weight() != 9 {
		t.Errorf("the weight change was not made: %d", b.Weight())
	}
	check("full", "write "+dir+"/state.json.tmp-")

	// Read-only.
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	if err := src.SetState("t", "b", "maint"); err != nil {
		t.Fatalf("a change on a read-only file system: %v", err)
	}
	if b := d.srv.Backends("t")[1]; b.State() != backend.Maint {
		t.Errorf("the state change was not made: %v", b.State())
	}
	check("read-only", "open "+dir+"/state.json.tmp-")
	if !strings.Contains(logs.String(), "read-only file system") {
		t.Errorf("log lacks the read-only file system:\n%s", logs.String())
	}

	// Room again: the next change writes everything.
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT, "size=64k"); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "filler"))
	if err := src.SetState("t", "a", "ready"); err != nil {
		t.Fatal(err)
	}
	now, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(now), `"weight": 9`) || !strings.Contains(string(now), `"state": "maint"`) {
		t.Errorf("state file after the file system recovered: %s, %v", now, err)
	}
}
