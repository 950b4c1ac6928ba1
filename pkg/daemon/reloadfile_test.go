package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestReloadReadsTheConfigFile reloads without Options.Load: the daemon
// reads its config file again. An edit that turns a frontend's checks off
// and removes another frontend applies: the first keeps serving with its
// checks stopped, the second's listener and checks go. A daemon whose
// config was built in code has no file, and says so.
func TestReloadReadsTheConfigFile(t *testing.T) {
	back := startDemo(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "splicer.toml")
	frontend := func(name, check string) string {
		return fmt.Sprintf("[[frontend]]\nname = %q\nlisten = \"127.0.0.1:0\"\n[frontend.health]\ncheck = %q\ninterval = \"1h\"\npassive_fall = 0\n"+
			"[[frontend.backend]]\naddress = %q\n\n", name, check, back.Addr().String())
	}
	head := fmt.Sprintf("[global]\nruntime_dir = %q\nstate_file = \"\"\nmax_connections = 1000\n[admin]\nlisten = \"\"\n\n", dir)
	os.WriteFile(path, []byte(head+frontend("t", "tcp")+frontend("gone", "tcp")), 0o600)
	cfg, err := config.LoadIn(path, HostEnvironment())
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{})
	gone := d.srv.Addrs("gone")[0].String()
	if d.checks.scheduler("t") == nil || d.checks.scheduler("gone") == nil {
		t.Fatal("no checks before the reload")
	}
	os.WriteFile(path, []byte(head+frontend("t", "none")), 0o600)
	out := d.Reload(context.Background())
	if !out.OK || out.File != path {
		t.Fatalf("reload: %+v", out)
	}
	if d.checks.scheduler("t") != nil || d.checks.scheduler("gone") != nil {
		t.Error("checks still run after the reload turned them off and removed a frontend")
	}
	if g := greeting(t, frontAddr(t, d)); !strings.HasPrefix(g, "hello from demo backend") {
		t.Errorf("frontend t after the reload: %q", g)
	}
	if !refused(gone) {
		t.Errorf("the removed frontend still listens on %s", gone)
	}
	// A file that no longer parses: refused, with the line.
	os.WriteFile(path, []byte(head+"[[frontend]]\nname = 7\n"), 0o600)
	out = d.Reload(context.Background())
	if out.OK || !slices.ContainsFunc(out.Problems, func(p config.Problem) bool {
		return p.String() == path+`:9: frontend[0]: name: must be a string, got an integer`
	}) {
		t.Errorf("reload of a broken file: %+v", out)
	}
	if g := greeting(t, frontAddr(t, d)); !strings.HasPrefix(g, "hello from demo backend") {
		t.Errorf("frontend t after the refused reload: %q", g)
	}

	built, err := config.New().RuntimeDir(t.TempDir()).AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	d = runWith(t, built, Options{})
	if out := d.Reload(context.Background()); out.OK || len(out.Problems) != 1 ||
		out.Problems[0].Msg != "this daemon's configuration was built in code: there is no file to reload" {
		t.Errorf("reload of a config built in code: %+v", out)
	}
}

// TestNotifications runs a daemon under a service manager, a unixgram
// socket standing in for systemd's: READY=1 and its STATUS when serving,
// RELOADING=1 with MONOTONIC_USEC then READY=1 at a reload, STOPPING=1 at
// the stop. A manager that has gone is logged, never fatal.
func TestNotifications(t *testing.T) {
	back := startDemo(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "4000000")
	t.Setenv("WATCHDOG_PID", "")
	n := NotifierFromEnv()
	if n == nil || n.Watchdog != 2*time.Second {
		t.Fatalf("notifier %+v, want the watchdog at half of WATCHDOG_USEC", n)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if n := NotifierFromEnv(); n.Watchdog != 0 {
		t.Errorf("the watchdog of another process taken: %v", n.Watchdog)
	}
	n.Watchdog = 0
	cfg, err := config.New().RuntimeDir(t.TempDir()).AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	d, err := New(cfg, zerolog.New(&logs), Options{Notifier: n, Load: func() (*config.Config, error) { return cfg, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	next := func() string {
		t.Helper()
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		k, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:k])
	}
	if got, want := next(), "READY=1\nSTATUS=serving 1 frontends (config )\n"; got != want {
		t.Errorf("at the start %q, want %q", got, want)
	}
	d.Reload(context.Background())
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasSuffix(got, "\nSTATUS=reloading the configuration\n") {
		t.Errorf("at the reload %q", got)
	}
	if got, want := next(), "READY=1\nSTATUS=serving 1 frontends (config )\n"; got != want {
		t.Errorf("after the reload %q, want %q", got, want)
	}
	// The manager goes away: the daemon says so and serves on.
	ln.Close()
	os.Remove(sock)
	d.Reload(context.Background())
	testutil.WaitFor(t, 5*time.Second, "the failure logged", func() bool {
		return strings.Contains(logs.String(), `"message":"service manager notification failed"`) &&
			strings.Contains(logs.String(), "sd_notify: dial unixgram "+sock+": connect: no such file or directory")
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
