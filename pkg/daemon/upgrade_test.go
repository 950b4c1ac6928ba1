package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// The upgrade tests run both sides of the handshake in this process: the
// old Daemon starts its "new process" through startSuccessor, which they
// replace with a goroutine given its own fd of the very socketpair the
// binary would get as fd 3. The listening sockets, the admin port, the
// listener locks and the connections cross it with SCM_RIGHTS as they do
// between two processes. cmd/splicer's tests run the real binary.

// fakePID is the pid the old daemon is told its successor has.
const fakePID = 424242

// successorRun is what a fake new process does with its handshake fd,
// which it owns; stop is closed when the old process signals it. It
// returns how the process ended.
type successorRun func(fd int, stop <-chan struct{}) error

// fakeSuccessor makes the upgrades of this test run script instead of a
// new process, and returns the signals the old process sent it.
func fakeSuccessor(t *testing.T, script successorRun) *sentSignals {
	t.Helper()
	prev := startSuccessor
	t.Cleanup(func() { startSuccessor = prev })
	sent := &sentSignals{}
	startSuccessor = func(args []string, handshake *os.File) (*successor, error) {
		fd, err := unix.FcntlInt(handshake.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		stop := make(chan struct{})
		var once sync.Once
		exited := make(chan error, 1)
		go func() { exited <- script(fd, stop) }()
		return &successor{pid: fakePID, exited: exited, signal: func(sig os.Signal) error {
			sent.add(sig)
			once.Do(func() { close(stop) })
			return nil
		}}, nil
	}
	return sent
}

// sentSignals records the signals an old process sent its successor.
type sentSignals struct {
	mu   sync.Mutex
	sigs []os.Signal
}

func (s *sentSignals) add(sig os.Signal) {
	s.mu.Lock()
	s.sigs = append(s.sigs, sig)
	s.mu.Unlock()
}

func (s *sentSignals) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.sigs)
}

// newDaemonScript is a successor running a real new daemon for cfg: it
// takes the hand-over, then New and Run as `splicer run` does, until the
// old process stops it or the test ends. The daemon is sent on started;
// a start that fails is reported over the handshake.
func newDaemonScript(t *testing.T, cfg *config.Config, logs io.Writer, started chan<- *Daemon) successorRun {
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		select {
		case <-ended:
		case <-time.After(20 * time.Second):
			t.Error("the new daemon did not stop")
		}
	})
	return func(fd int, stop <-chan struct{}) error {
		defer close(ended)
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		h, err := handoverOn(fd, os.Getpid())
		if err != nil {
			return err
		}
		d, err := New(cfg, zerolog.New(logs), Options{Handover: h, Args: []string{"splicer"}})
		if err != nil {
			h.Fail(err)
			<-ctx.Done()
			return err
		}
		started <- d
		err = d.Run(ctx)
		<-ctx.Done()
		return err
	}
}

// upgradeArgs is the command line of the daemons the tests upgrade.
var upgradeArgs = []string{"splicer", "run", "-c", "test.toml"}

// runLogged runs a daemon for cfg with opts, logging to logs, until the
// test ends, and returns once it serves; done receives Run's error.
func runLogged(t *testing.T, cfg *config.Config, logs io.Writer, opts Options) (*Daemon, <-chan error) {
	t.Helper()
	d, err := New(cfg, zerolog.New(logs), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, stopped := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(stopped)
		done <- d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Error("the daemon did not stop")
		}
	})
	testutil.WaitFor(t, 5*time.Second, "the daemon serving", func() bool { return d.srv.Started() && d.serving.Load() })
	return d, done
}

// upgradeConfig is a config with an admin port, a state file, a runtime
// directory (the listener locks) and frontend "t" on front.
func upgradeConfig(t *testing.T, dir, adminAddr, front, back string) *config.Config {
	t.Helper()
	cfg, err := config.New().RuntimeDir(dir).StateFile(filepath.Join(dir, "state.json")).
		AdminListen(adminAddr).ShutdownTimeout(10*time.Second).
		Frontend("t").Listen(front).Backend(back, 1).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// httpGet returns url's status and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestUpgradeHandsOverInProcess upgrades one daemon to another over the
// real handshake: the new one serves on the same frontend and admin
// sockets, holds the listener locks, restores the runtime weight from the
// state file, and carries on a connection the old one relayed (bytes both
// ways, same connection ID), while the old one's Run returns at once,
// having nothing left to drain, and it refuses any further change.
func TestUpgradeHandsOverInProcess(t *testing.T) {
	dir := t.TempDir()
	back := startDemo(t)
	adminAddr, front := freeTCP(t), freeTCP(t)
	cfg := upgradeConfig(t, dir, adminAddr, front, back.Addr().String())
	var oldLogs, newLogs testutil.SyncBuffer
	started := make(chan *Daemon, 1)
	sent := fakeSuccessor(t, newDaemonScript(t, upgradeConfig(t, dir, adminAddr, front, back.Addr().String()), &newLogs, started))
	old, oldDone := runLogged(t, cfg, &oldLogs, Options{Args: upgradeArgs})

	held := hold(t, netip.MustParseAddrPort(front))
	if err := held.echo(); err != nil {
		t.Fatal(err)
	}
	conns, _, err := (&source{d: old}).Connections("t", 0, 10)
	if err != nil || len(conns) != 1 {
		t.Fatalf("connections before the upgrade: %v, %v", conns, err)
	}
	// An operator's runtime change, which the new process must keep.
	if err := (&source{d: old}).SetWeight("t", back.Addr().String(), 9); err != nil {
		t.Fatal(err)
	}

	out := old.Upgrade(context.Background())
	if !out.OK || out.Err != nil || out.OldPID != os.Getpid() || out.NewPID != fakePID {
		t.Fatalf("upgrade: %+v\nold process's log:\n%s\nnew process's log:\n%s", out, oldLogs.String(), newLogs.String())
	}
	var nd *Daemon
	select {
	case nd = <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no new daemon")
	}
	select {
	case err := <-oldDone:
		if err != nil {
			t.Errorf("the old daemon's Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the old daemon still drains after its connection was handed over:\n%s", oldLogs.String())
	}
	if s := sent.String(); s != "[]" {
		t.Errorf("the old process signalled a successful successor: %s", s)
	}

	// The held connection goes on through the new daemon, with its ID.
	if err := held.echo(); err != nil {
		t.Fatalf("the held connection after the upgrade: %v", err)
	}
	after, _, err := (&source{d: nd}).Connections("t", 0, 10)
	if err != nil || len(after) != 1 || after[0].ID != conns[0].ID {
		t.Errorf("the new daemon's connections %+v, %v; want the one of ID %d", after, err, conns[0].ID)
	}
	if g := greeting(t, front); !strings.HasPrefix(g, "hello from demo backend") {
		t.Errorf("a new connection after the upgrade got %q", g)
	}
	if b := nd.srv.Backends("t")[0]; b.Weight() != 9 || b.State() != backend.Ready {
		t.Errorf("the new daemon's backend: weight %d, state %v; want the runtime weight 9", b.Weight(), b.State())
	}
	// The admin port's socket was handed over: the same address answers
	// from the new daemon, which is ready.
	if nd.adminLn == nil || nd.adminLn.Addr().String() != adminAddr {
		t.Errorf("the new daemon's admin listener %v, want %s", nd.adminLn, adminAddr)
	}
	if code, body := httpGet(t, "http://"+adminAddr+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("readyz after the upgrade: %d %q", code, body)
	}
	if (&source{d: old}).Ready() {
		t.Error("the old daemon says it is ready after handing over")
	}
	// The new daemon holds the listener locks the old one had.
	other, err := newLocks(dir, "other.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.update(wantLocks(cfg)); !errors.Is(err, errLocked) {
		t.Errorf("a third instance on %s: %v, want the lock held", front, err)
	}
	other.releaseAll()

	// The old daemon refuses every change and names its successor.
	wantHanded := fmt.Sprintf("this process handed over to pid %d at an upgrade and is draining: reload that one", fakePID)
	if r := old.Reload(context.Background()); r.OK || len(r.Problems) != 1 || r.Problems[0].Msg != wantHanded {
		t.Errorf("reload of the old daemon: %+v", r)
	}
	if u := old.Upgrade(context.Background()); u.OK || u.Err == nil ||
		u.Err.Error() != fmt.Sprintf("this process already handed over to pid %d", fakePID) {
		t.Errorf("second upgrade of the old daemon: %+v", u)
	}
	if _, err := old.SetBackends(context.Background(), "t", nil); err == nil ||
		err.Error() != "this process handed over at an upgrade and is draining" {
		t.Errorf("SetBackends on the old daemon: %v", err)
	}
	for _, want := range []string{`"message":"upgrade: connections handed over to the new process"`, `"adopted_tcp":1`, `"lost":0`, `"left_to_drain":0`} {
		if !strings.Contains(oldLogs.String(), want) {
			t.Errorf("the old daemon's log lacks %s:\n%s", want, oldLogs.String())
		}
	}
	// The new daemon logs it once the old one confirmed the end of the
	// hand-over, which it may do after this test got here.
	testutil.WaitFor(t, 5*time.Second, "the new daemon's log to say it took over", func() bool {
		return strings.Contains(newLogs.String(), `"message":"upgrade: took over from the old process"`)
	})
}

// TestUpgradeRefusals tries upgrades whose new process cannot take over:
// each fails with the exact reason, the new process is stopped (or has
// exited), and the old daemon serves on, its held connection and new ones
// alike, and upgrades afterwards.
func TestUpgradeRefusals(t *testing.T) {
	dir := t.TempDir()
	back := startDemo(t)
	adminAddr, front := freeTCP(t), freeTCP(t)
	cfg := upgradeConfig(t, dir, adminAddr, front, back.Addr().String())
	var logs testutil.SyncBuffer
	old, _ := runLogged(t, cfg, &logs, Options{Args: upgradeArgs})
	held := hold(t, netip.MustParseAddrPort(front))
	exit3 := exec.Command("/bin/sh", "-c", "exit 3").Run()
	taken := filepath.Join(dir, "taken")
	if err := os.WriteFile(taken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	badSocket, err := config.New().RuntimeDir(dir).AdminListen(adminAddr).AdminSocket(taken).
		Frontend("t").Listen(front).Backend(back.Addr().String(), 1).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		timeout time.Duration // of the upgrade's context; 0: none
		script  successorRun
		want    string // the error, exactly
		signals string // what the old process sent
	}{{
		// The handshake speaks another version: the old process says so
		// and stops it.
		name: "wrong version",
		script: func(fd int, stop <-chan struct{}) error {
			defer unix.Close(fd)
			if err := sendMsg(fd, handoverMsg{Type: "hello", Version: handoverVersion + 1, PID: fakePID}, nil); err != nil {
				return err
			}
			m, fds, err := recvMsg(fd, 5*time.Second)
			closeAll(fds)
			if err != nil || m.Type != "error" || m.Error != "unsupported handshake" {
				return fmt.Errorf("the old process answered %+v, %v", m, err)
			}
			<-stop
			return nil
		},
		want:    `the new binary speaks upgrade handshake version 2 ("hello"), this one 1; new process (pid 424242) stopped`,
		signals: "[terminated]",
	}, {
		// It takes the sockets, then hangs: the upgrade's deadline stops it.
		name:    "never ready",
		timeout: 300 * time.Millisecond,
		script: func(fd int, stop <-chan struct{}) error {
			h, err := handoverOn(fd, os.Getpid())
			if err != nil {
				return err
			}
			defer h.close()
			<-stop
			return nil
		},
		want:    "upgrade handshake: no answer within ",
		signals: "[terminated]",
	}, {
		// It exits before saying anything: the old process says how it
		// ended.
		name: "exits",
		script: func(fd int, stop <-chan struct{}) error {
			unix.Close(fd)
			return exit3
		},
		want:    "upgrade handshake: the other process closed the connection; new process (pid 424242) exit status 3",
		signals: "[]",
	}, {
		// It cannot start: its admin socket's path is a file. It reports
		// the error over the handshake, as `splicer run` does.
		name:    "new daemon fails",
		script:  newDaemonScript(t, badSocket, io.Discard, make(chan *Daemon, 1)),
		want:    "the new process could not start: admin socket " + taken + ": exists and is not a socket; new process (pid 424242) stopped",
		signals: "[terminated]",
	}, {
		// It answers out of turn.
		name: "not ready",
		script: func(fd int, stop <-chan struct{}) error {
			h, err := handoverOn(fd, os.Getpid())
			if err != nil {
				return err
			}
			defer h.close()
			if err := sendMsg(fd, handoverMsg{Type: "adopted"}, nil); err != nil {
				return err
			}
			<-stop
			return nil
		},
		want:    `upgrade handshake: "adopted" where ready was expected; new process (pid 424242) stopped`,
		signals: "[terminated]",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent := fakeSuccessor(t, tc.script)
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			out := old.Upgrade(ctx)
			took := time.Since(start)
			switch {
			case out.OK || out.Err == nil:
				t.Fatalf("upgrade succeeded: %+v", out)
			case tc.timeout > 0 && (!strings.HasPrefix(out.Err.Error(), tc.want) ||
				!strings.HasSuffix(out.Err.Error(), "; new process (pid 424242) stopped")):
				t.Errorf("error %q, want %q...", out.Err, tc.want)
			case tc.timeout == 0 && out.Err.Error() != tc.want:
				t.Errorf("error %q\nwant  %q", out.Err, tc.want)
			}
			if tc.timeout > 0 && (took < tc.timeout || took > 2*tc.timeout+5*time.Second) {
				t.Errorf("the upgrade gave up after %v, want %v", took, tc.timeout)
			}
			if out.NewPID != fakePID || out.OldPID != os.Getpid() {
				t.Errorf("pids %+v", out)
			}
			if s := sent.String(); s != tc.signals {
				t.Errorf("signals sent %s, want %s", s, tc.signals)
			}
			// The old daemon serves on: the held connection, new ones, the
			// admin port; it still holds its locks and is not handed over.
			if err := held.echo(); err != nil {
				t.Errorf("the held connection: %v", err)
			}
			if g := greeting(t, front); !strings.HasPrefix(g, "hello from demo backend") {
				t.Errorf("a new connection got %q", g)
			}
			if code, body := httpGet(t, "http://"+adminAddr+"/readyz"); code != http.StatusOK || body != "ready\n" {
				t.Errorf("readyz: %d %q", code, body)
			}
			if old.isHandedOver() || !old.serving.Load() {
				t.Error("the old daemon stopped serving")
			}
		})
	}
	if !strings.Contains(logs.String(), `"message":"upgrade failed: this process serves on"`) {
		t.Errorf("the old daemon's log:\n%s", logs.String())
	}

	// After all that, an upgrade that works.
	started := make(chan *Daemon, 1)
	fakeSuccessor(t, newDaemonScript(t, cfg, io.Discard, started))
	if out := old.Upgrade(context.Background()); !out.OK {
		t.Fatalf("upgrade after the failures: %+v", out)
	}
	if err := held.echo(); err != nil {
		t.Errorf("the held connection after the upgrade: %v", err)
	}
	held.c.Close() // the new daemon's shutdown has nothing to wait for
}

// TestUpgradeChild is the new process of TestUpgradeExecsTheBinary: this
// test binary, started by execSuccessor. It checks the environment it was
// given and exits 3 without a word, as a broken build would; 4 when the
// environment is wrong. Run directly, it does nothing.
func TestUpgradeChild(t *testing.T) {
	if os.Getenv(handoverEnv) == "" {
		t.Skip("the new process of TestUpgradeExecsTheBinary")
	}
	if os.Getenv(handoverEnv) != "3" || os.Getenv("WATCHDOG_PID") != "" || os.Getenv("SPLICER_TEST_KEPT") != "yes" {
		os.Exit(4)
	}
	var st unix.Stat_t
	if err := unix.Fstat(3, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		os.Exit(4)
	}
	os.Exit(3)
}

// TestUpgradeExecsTheBinary upgrades to the binary at this process's path
// (this test binary, running TestUpgradeChild) with the handshake socket
// as fd 3, SPLICER_UPGRADE_FD naming it, WATCHDOG_PID dropped and the rest
// of the environment kept; the child exits at once: the upgrade fails
// saying how, and the daemon serves on.
func TestUpgradeExecsTheBinary(t *testing.T) {
	t.Setenv("WATCHDOG_PID", "1")
	t.Setenv("SPLICER_TEST_KEPT", "yes")
	back := startDemo(t)
	cfg, err := config.New().RuntimeDir(t.TempDir()).StateFile("").AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := runLogged(t, cfg, io.Discard, Options{Args: []string{"splicer", "-test.run=^TestUpgradeChild$"}})
	out := d.Upgrade(context.Background())
	want := fmt.Sprintf("upgrade handshake: the other process closed the connection; new process (pid %d) exit status 3", out.NewPID)
	if out.OK || out.NewPID <= 0 || out.NewPID == os.Getpid() || out.Err == nil || out.Err.Error() != want {
		t.Fatalf("upgrade: %+v\nwant the error %q", out, want)
	}
	if g := greeting(t, frontAddr(t, d)); !strings.HasPrefix(g, "hello from demo backend") {
		t.Errorf("after the failed upgrade: %q", g)
	}
}

// TestUpgradeMovesTheAdminPort upgrades to a config whose admin port is
// elsewhere: the new daemon closes the admin socket it was handed and
// binds its own; once the old one is gone the old address refuses.
func TestUpgradeMovesTheAdminPort(t *testing.T) {
	dir := t.TempDir()
	back := startDemo(t)
	adminAddr, moved, front := freeTCP(t), freeTCP(t), freeTCP(t)
	started := make(chan *Daemon, 1)
	fakeSuccessor(t, newDaemonScript(t, upgradeConfig(t, dir, moved, front, back.Addr().String()), io.Discard, started))
	old, oldDone := runLogged(t, upgradeConfig(t, dir, adminAddr, front, back.Addr().String()), io.Discard, Options{Args: upgradeArgs})
	if out := old.Upgrade(context.Background()); !out.OK {
		t.Fatalf("upgrade: %+v", out)
	}
	nd := <-started
	if err := <-oldDone; err != nil {
		t.Errorf("the old daemon: %v", err)
	}
	if code, body := httpGet(t, "http://"+moved+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("the moved admin port: %d %q", code, body)
	}
	if !refused(adminAddr) {
		t.Errorf("the old admin address %s still listens", adminAddr)
	}
	if nd.config().Admin.Listen != moved {
		t.Errorf("the new daemon's admin.listen %q", nd.config().Admin.Listen)
	}
}

// TestUpgradeSuccessorDiesAfterReady: the new process says ready, then
// dies before taking the connections. The upgrade is done (the listening
// sockets are the new process's, which the service manager restarts), the
// connection whose hand-over failed is taken back and drains in the old
// process until its shutdown_timeout, and the old process logs how its
// successor ended.
func TestUpgradeSuccessorDiesAfterReady(t *testing.T) {
	dir := t.TempDir()
	back := startDemo(t)
	adminAddr, front := freeTCP(t), freeTCP(t)
	var logs testutil.SyncBuffer
	fakeSuccessor(t, func(fd int, stop <-chan struct{}) error {
		h, err := handoverOn(fd, os.Getpid())
		if err != nil {
			return err
		}
		sendMsg(fd, handoverMsg{Type: "ready", PID: fakePID}, nil)
		h.close()
		return errors.New("signal: killed")
	})
	old, oldDone := runLogged(t, upgradeConfig(t, dir, adminAddr, front, back.Addr().String()), &logs, Options{Args: upgradeArgs})
	held := hold(t, netip.MustParseAddrPort(front))
	if out := old.Upgrade(context.Background()); !out.OK || out.NewPID != fakePID {
		t.Fatalf("upgrade: %+v", out)
	}
	select {
	case err := <-oldDone:
		if err != nil {
			t.Errorf("the old daemon: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the old daemon still runs")
	}
	if want := `"lost":0,"left_to_drain":1`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs.String())
	}
	// Reaped in the background.
	testutil.WaitFor(t, 5*time.Second, "the successor's end logged", func() bool {
		return strings.Contains(logs.String(), `"error":"signal: killed","pid":424242,"message":"the upgraded process exited"`)
	})
	if err := held.echo(); err == nil {
		t.Error("the connection still carries bytes after the old process's shutdown_timeout")
	}
}

// unixClient is an HTTP client of the admin socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}}
}

// TestUpgradeWithAdminSocket upgrades, as `splicer upgrade -admin
// unix:PATH` does, through the admin socket: the request is answered with
// both pids, and the socket then answers from the new daemon. Before the
// fix the new process found the old one serving the socket and every
// upgrade of a daemon with an admin socket failed.
func TestUpgradeWithAdminSocket(t *testing.T) {
	dir := t.TempDir()
	back := startDemo(t)
	front := freeTCP(t)
	sock := filepath.Join(dir, "admin.sock")
	cfg, err := config.New().RuntimeDir(dir).StateFile("").AdminListen("").AdminSocket(sock).
		AdminSocketRole(fmt.Sprintf("uid:%d", os.Getuid()), "admin").ShutdownTimeout(5*time.Second).
		Frontend("t").Listen(front).Backend(back.Addr().String(), 1).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	var newLogs testutil.SyncBuffer
	started := make(chan *Daemon, 1)
	fakeSuccessor(t, newDaemonScript(t, cfg, &newLogs, started))
	old, oldDone := runLogged(t, cfg, io.Discard, Options{Args: upgradeArgs})
	held := hold(t, netip.MustParseAddrPort(front))

	c := unixClient(sock)
	resp, err := c.Post("http://splicer/api/v1/upgrade", "application/json", nil)
	if err != nil {
		t.Fatalf("POST /api/v1/upgrade on the admin socket: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`"old_pid":%d,"new_pid":%d`, os.Getpid(), fakePID)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		t.Fatalf("upgrade over the admin socket: %d %s\nnew daemon's log:\n%s", resp.StatusCode, body, newLogs.String())
	}
	nd := <-started
	if err := <-oldDone; err != nil {
		t.Errorf("the old daemon: %v", err)
	}
	if old.adminSock != nil {
		t.Error("the old daemon still holds the admin socket")
	}
	c.CloseIdleConnections()
	testutil.WaitFor(t, 5*time.Second, "the admin socket served by the new daemon", func() bool {
		nd.adminMu.Lock()
		defer nd.adminMu.Unlock()
		return nd.adminSock != nil
	})
	resp, err = unixClient(sock).Get("http://splicer/readyz")
	if err != nil {
		t.Fatalf("the admin socket after the upgrade: %v\n%s", err, newLogs.String())
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ready\n" {
		t.Errorf("readyz on the admin socket after the upgrade: %d %q", resp.StatusCode, body)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("the socket file: %v, %v", fi, err)
	}
	if err := held.echo(); err != nil {
		t.Errorf("the held connection after the upgrade: %v", err)
	}
	held.c.Close()
}
