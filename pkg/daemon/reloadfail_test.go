package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// refused reports whether nothing listens at addr.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err != nil
}

// TestReloadFailuresRollBack reloads configs that fail at each step of the
// reload transaction: every one is refused with the exact problem, and the
// old config serves on, its frontend, its admin port and its connection
// log; what the failed steps had opened (a new admin listener, a new log
// file) is closed again.
func TestReloadFailuresRollBack(t *testing.T) {
	back := startDemo(t)
	dir := t.TempDir()
	runtimeDir := filepath.Join(dir, "run")
	adminAddr := freeTCP(t)
	connLog := filepath.Join(dir, "conn.log")
	// Another instance holds the listener lock of an address.
	lockedAddr := freeTCP(t)
	other, err := newLocks(runtimeDir, "/etc/other.toml")
	if err != nil {
		t.Fatal(err)
	}
	u, err := other.update(wantLocks(cfgListening(t, lockedAddr)))
	if err != nil {
		t.Fatal(err)
	}
	u.commit()
	defer other.releaseAll()
	// A plain socket on an address, which the data plane cannot bind.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	users, _ := writeUsers(t, "admin")
	openUsers := filepath.Join(dir, "users-open")
	data, _ := os.ReadFile(users)
	os.WriteFile(openUsers, data, 0o644)
	os.Chmod(openUsers, 0o644)
	movedAdmin := freeTCP(t)

	type change struct {
		admin, users, connLog, listen string
	}
	build := func(c change) *config.Config {
		if c.admin == "" {
			c.admin = adminAddr
		}
		if c.users == "" {
			c.users = users
		}
		if c.connLog == "" {
			c.connLog = connLog
		}
		fb := config.New().RuntimeDir(runtimeDir).StateFile("").AdminListen(c.admin).AdminUsersFile(c.users).
			ConnectionsFile(c.connLog).Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").
			LogConnections(config.LogAll)
		if c.listen != "" {
			fb = fb.Frontend("u").Listen(c.listen).Backend(back.Addr().String(), 1).HealthCheck("none")
		}
		cfg, err := fb.Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var next configs
	var logs testutil.SyncBuffer
	d, _ := runLogged(t, build(change{}), &logs, Options{Load: next.load})
	front := frontAddr(t, d)

	tests := []struct {
		name    string
		change  change
		want    string // the one problem's message, exactly
		prefix  bool   // want is its start
		notOpen string // an address the failed reload must have left closed
	}{
		{name: "an address another instance serves", change: change{listen: lockedAddr},
			want: fmt.Sprintf(`listen tcp %s: already served by another splicer (lock %s/tcp-%s-127.0.0.1.lock): stop that instance first, or replace it with "splicer upgrade"`,
				lockedAddr, runtimeDir, lockedAddr[strings.LastIndexByte(lockedAddr, ':')+1:])},
		{name: "the admin port moves to a taken address", change: change{admin: taken.Addr().String()},
			want: "admin.listen: listen tcp " + taken.Addr().String() + ": bind: address already in use"},
		{name: "the admin port moves, the users file is open to all", change: change{admin: movedAdmin, users: openUsers},
			want: `admin.users_file: file "` + openUsers + `": mode 0644 lets users other than its owner`, prefix: true, notOpen: movedAdmin},
		{name: "the connection log moves into a missing directory", change: change{connLog: filepath.Join(dir, "missing", "conn.log")},
			want: "log.connections_file: log file: open " + filepath.Join(dir, "missing", "conn.log") + ": no such file or directory"},
		{name: "the connection log moves, a frontend cannot bind", change: change{connLog: filepath.Join(dir, "new.log"), listen: taken.Addr().String()},
			want: `frontend "u": listen ` + taken.Addr().String(), prefix: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next.set(build(tc.change))
			before := testutil.OpenFDs(t)
			out := d.Reload(context.Background())
			fdsBackTo(t, before, "after the failed reload")
			if out.OK || len(out.Problems) != 1 {
				t.Fatalf("reload: %+v", out)
			}
			if msg := out.Problems[0].Msg; msg != tc.want && !(tc.prefix && strings.HasPrefix(msg, tc.want)) {
				t.Errorf("problem %q\nwant %q", msg, tc.want)
			}
			if tc.notOpen != "" && !refused(tc.notOpen) {
				t.Errorf("%s still listens after the failed reload", tc.notOpen)
			}
			// The old config serves on.
			if g := greeting(t, front); !strings.HasPrefix(g, "hello from demo backend") {
				t.Errorf("the frontend after the failed reload: %q", g)
			}
			if code, body := httpGet(t, "http://"+adminAddr+"/readyz"); code != http.StatusOK || body != "ready\n" {
				t.Errorf("the admin port after the failed reload: %d %q", code, body)
			}
			if d.config().Admin.Listen != adminAddr || d.config().Log.ConnectionsFile != connLog || len(d.config().Frontends) != 1 {
				t.Error("the failed reload changed the config in force")
			}
		})
	}
	// Every connection of the failed reloads was logged to the old file.
	testutil.WaitFor(t, 5*time.Second, "the connections logged", func() bool {
		b, _ := os.ReadFile(connLog)
		return strings.Count(string(b), `"message":"connection closed"`) >= len(tests)
	})
	if !strings.Contains(logs.String(), `"message":"reload refused: the previous configuration serves on"`) {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestReloadMovesAdminAndConnectionLog reloads a config that closes the
// admin TCP port (the admin socket stays) and moves the connection log:
// the TCP port refuses, the socket answers, the next connection is logged
// to the new file.
func TestReloadMovesAdminAndConnectionLog(t *testing.T) {
	back := startDemo(t)
	dir := t.TempDir()
	adminAddr, sock := freeTCP(t), filepath.Join(dir, "admin.sock")
	build := func(listen, connLog string) *config.Config {
		cfg, err := config.New().RuntimeDir(dir).StateFile("").AdminListen(listen).AdminSocket(sock).ConnectionsFile(connLog).
			Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").
			LogConnections(config.LogAll).Build()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var next configs
	d := runWith(t, build(adminAddr, filepath.Join(dir, "old.log")), Options{Load: next.load})
	front := frontAddr(t, d)
	greeting(t, front)
	testutil.WaitFor(t, 5*time.Second, "the first connection in the old log", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "old.log"))
		return strings.Contains(string(b), `"message":"connection closed"`)
	})
	next.set(build("", filepath.Join(dir, "new.log")))
	if out := d.Reload(context.Background()); !out.OK {
		t.Fatalf("reload: %+v", out.Problems)
	}
	if !refused(adminAddr) {
		t.Error("the admin TCP port still listens")
	}
	resp, err := unixClient(sock).Get("http://splicer/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the admin socket after the reload: %v, %v", resp, err)
	}
	resp.Body.Close()
	greeting(t, front)
	testutil.WaitFor(t, 5*time.Second, "a line in the new log", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "new.log"))
		return strings.Contains(string(b), `"message":"connection closed"`)
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "old.log")); strings.Count(string(b), "\n") != 1 {
		t.Errorf("the old log holds %q, want the first connection alone", b)
	}
}

// fillUp writes path until its file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{4096, 1} {
		for {
			if _, err := f.Write(make([]byte, size)); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

// TestSignals drives a daemon by signals as an operator does: SIGHUP
// reloads (and the audit log records it, or says it could not, on a full
// disk), SIGUSR1 reopens the connection log (and says so when its
// directory has gone), SIGUSR2 upgrades (and says why it could not).
func TestSignals(t *testing.T) {
	back := startDemo(t)
	dir := t.TempDir()
	auditDir := mountTmpfs(t, 64<<10, "mode=0755")
	key := filepath.Join(dir, "audit.key")
	os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	logDir := filepath.Join(dir, "logs")
	os.Mkdir(logDir, 0o755)
	cfg, err := config.New().RuntimeDir(dir).StateFile("").AdminListen("127.0.0.1:0").
		AdminAuditLog(filepath.Join(auditDir, "audit.log"), config.Secret{File: key}).
		ConnectionsFile(filepath.Join(logDir, "conn.log")).
		Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal)
	var logs testutil.SyncBuffer
	d, _ := runLogged(t, cfg, &logs, Options{Signals: sigs, Load: func() (*config.Config, error) { return cfg, nil }})
	waitLog := func(what string) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, what, func() bool { return strings.Contains(logs.String(), what) })
	}

	sigs <- syscall.SIGHUP
	waitLog(`"message":"configuration reloaded"`)
	b, err := os.ReadFile(filepath.Join(auditDir, "audit.log"))
	if err != nil || !strings.Contains(string(b), `"transport":"signal"`) || !strings.Contains(string(b), `"action":"reload"`) {
		t.Errorf("the audit log after SIGHUP: %s, %v", b, err)
	}
	// A full disk: the reload happens, the audit record is missed, and said.
	fillUp(t, filepath.Join(auditDir, "fill"))
	reloads := strings.Count(logs.String(), `"message":"configuration reloaded"`)
	for i := 0; i < 100 && !strings.Contains(logs.String(), "audit record of the reload not written"); i++ {
		// The audit log's last page takes records until it is full.
		sigs <- syscall.SIGHUP
		testutil.WaitFor(t, 5*time.Second, "the reload", func() bool {
			return strings.Count(logs.String(), `"message":"configuration reloaded"`) > reloads
		})
		reloads++
	}
	waitLog(`no space left on device","message":"audit record of the reload not written"`)

	// The log directory gone: the connection log writes on to its file.
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	sigs <- syscall.SIGUSR1
	waitLog(`"error":"log file: open ` + logDir + `/conn.log: no such file or directory","connections_file":"` + logDir + `/conn.log","message":"connection log: cannot reopen; writing on to the file already open"`)

	sigs <- syscall.SIGUSR2
	waitLog(`"error":"upgrade is not available: the daemon was not given its command line","new_pid":0,"message":"upgrade failed: this process serves on"`)
	if g := greeting(t, frontAddr(t, d)); !strings.HasPrefix(g, "hello from demo backend") {
		t.Errorf("after the signals: %q", g)
	}
}
