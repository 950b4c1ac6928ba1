package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// parseConfig parses a TOML config for a test, its frontend "t"
// forwarding to backend.
func parseConfig(t *testing.T, dir, global, frontend string) *config.Config {
	t.Helper()
	text := fmt.Sprintf("[global]\nruntime_dir = %q\nstate_file = \"\"\n%s\n[admin]\nlisten = \"\"\n\n"+
		"[[frontend]]\nname = \"t\"\nlisten = \"127.0.0.1:0\"\n%s\n", dir, global, frontend)
	path := filepath.Join(dir, "splicer.toml")
	cfg, err := config.Parse([]byte(text), path)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return cfg
}

// TestNewRefusals: New fails on whatever it cannot open or read, naming
// the setting or the file, and leaves nothing open behind.
func TestNewRefusals(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	key := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	backend := "\n[[frontend.backend]]\naddress = \"127.0.0.1:1\"\n"
	tests := []struct {
		name     string
		global   string
		frontend string
		build    func() *config.Config
		want     string
	}{
		{name: "connection log in a missing directory",
			global: "\n[log]\nconnections_file = \"" + missing + "/conn.log\"\n", frontend: backend,
			want: "log.connections_file: log file: open " + missing + "/conn.log: no such file or directory"},
		{name: "health password unreadable",
			frontend: "\n[frontend.health]\ncheck = \"postgres\"\nuser = \"splicer\"\npassword = { file = \"" + missing + "/pw\" }\n" + backend,
			want:     `frontend "t": health: health.password: file "` + missing + `/pw": no such file or directory: invalid health check`},
		{name: "audit log in a missing directory", build: func() *config.Config {
			cfg, err := config.New().RuntimeDir(dir).AdminListen("127.0.0.1:0").
				AdminAuditLog(filepath.Join(missing, "audit.log"), config.Secret{File: key}).
				Frontend("t").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		}, want: "audit log: open " + missing + "/audit.log: no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg *config.Config
			if tc.build != nil {
				cfg = tc.build()
			} else {
				cfg = parseConfig(t, dir, tc.global, tc.frontend)
			}
			before := testutil.OpenFDs(t)
			d, err := New(cfg, zerolog.Nop(), Options{})
			if err == nil {
				d.srv.Close()
				t.Fatal("New succeeded")
			}
			if err.Error() != tc.want {
				t.Errorf("New: %v\nwant %s", err, tc.want)
			}
			fdsBackTo(t, before, "after the failed New")
		})
	}
}

// TestRunRefusals: Run fails before serving on whatever it cannot take,
// naming the setting, and binds nothing it keeps.
func TestRunRefusals(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name  string
		build func(*config.Builder) *config.Builder
		want  string
	}{
		{"runtime_dir under a file", func(b *config.Builder) *config.Builder { return b.RuntimeDir(file + "/run") },
			"global.runtime_dir: mkdir " + file + ": not a directory"},
		{"admin port taken", func(b *config.Builder) *config.Builder { return b.AdminListen(taken.Addr().String()) },
			"admin.listen: listen tcp " + taken.Addr().String() + ": bind: address already in use"},
		{"admin socket on a file", func(b *config.Builder) *config.Builder {
			return b.AdminListen("127.0.0.1:0").AdminSocket(file)
		}, "admin socket " + file + ": exists and is not a socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.build(config.New().RuntimeDir(dir).AdminListen("")).
				Frontend("t").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
			if err != nil {
				t.Fatal(err)
			}
			var logs testutil.SyncBuffer
			d, err := New(cfg, zerolog.New(&logs), Options{})
			if err != nil {
				t.Fatal(err)
			}
			before := testutil.OpenFDs(t)
			err = d.Run(context.Background())
			if err == nil || err.Error() != tc.want {
				t.Errorf("Run: %v\nwant %s", err, tc.want)
			}
			if d.srv.Started() || d.serving.Load() {
				t.Error("serving after a failed start")
			}
			fdsBackTo(t, before, "after the failed Run")
		})
	}
}

// fdsBackTo waits until this process has at most want fds open: what a
// failed step opened is closed again. Goroutines of earlier tests (a
// keep-alive connection closing, a server stopping) may still close theirs
// meanwhile, so the count is waited for, not read once.
func fdsBackTo(t *testing.T, want int, what string) {
	t.Helper()
	n := 0
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("at most %d fds open %s", want, what), func() bool {
		n = testutil.OpenFDs(t)
		return n <= want
	})
}
