package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
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
// old process stops it or the test ends. The daemon is sent on started.
func newDaemonScript(t *testing.T, cfg *config.Config, logs io.Writer, started chan<- *Daemon) successorRun {
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	var runErr error
	t.Cleanup(func() {
		cancel()
		select {
		case <-ended:
		case <-time.After(20 * time.Second):
			t.Error("the new daemon did not stop")
		}
		if runErr != nil {
			t.Errorf("the new daemon's Run: %v", runErr)
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
		if err != nil && !d.isHandedOver() && !errors.Is(err, context.Canceled) {
			runErr = err
		}
		<-ctx.Done()
		return err
	}
}

// startOld runs the old daemon for cfg, able to upgrade; done receives
// Run's error.
func startOld(t *testing.T, cfg *config.Config, logs io.Writer) (*Daemon, <-chan error) {
	t.Helper()
	d, err := New(cfg, zerolog.New(logs), Options{Args: []string{"splicer", "run", "-c", "test.toml"}})
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
			t.Error("the old daemon did not stop")
		}
	})
	testutil.WaitFor(t, 5*time.Second, "the old daemon serving", func() bool { return d.srv.Started() && d.serving.Load() })
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
	old, oldDone := startOld(t, cfg, &oldLogs)

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
	if !strings.Contains(newLogs.String(), `"message":"upgrade: took over from the old process"`) {
		t.Errorf("the new daemon's log:\n%s", newLogs.String())
	}
}
