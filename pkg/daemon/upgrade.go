package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4"
)

// upgradeTimeout bounds an upgrade: from starting the new binary to its
// "ready". Loading a config and binding take milliseconds; the bound is
// for a new process that hangs.
const upgradeTimeout = 60 * time.Second

// UpgradeOutcome is what an upgrade did.
type UpgradeOutcome struct {
	OK     bool
	OldPID int
	NewPID int // 0 when the new process never started
	Err    error
}

// Upgrade replaces this process with a new one started from the binary at
// this process's executable path (where a package upgrade puts the new
// version), with the same arguments, and no connection attempt refused:
//
//  1. the state file is brought up to date;
//  2. the new process gets the listening sockets, the admin port's socket
//     and the listener locks over a unix socket (SCM_RIGHTS, see
//     handover.go), loads the config and the state file, and starts
//     serving on the very same sockets;
//  3. once it says ready, this process tells systemd the new main PID,
//     stops accepting (the sockets live on in the new process, their
//     backlogs included) and drains its connections and UDP flows until
//     shutdown_timeout, then Run returns.
//
// If the new binary fails to start, exits, reports an error or is not
// ready within upgradeTimeout, it is stopped, this process serves on, and
// the outcome says why.
func (d *Daemon) Upgrade(ctx context.Context) UpgradeOutcome {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	out := UpgradeOutcome{OldPID: os.Getpid()}
	switch {
	case d.isHandedOver():
		out.Err = fmt.Errorf("this process already handed over to pid %d", d.successor.Load())
		return out
	case !d.serving.Load():
		out.Err = errNotServing
		return out
	}
	d.log.Info().Msg("upgrade: starting the new binary")
	pid, err := d.upgrade(ctx)
	out.NewPID = pid
	if err != nil {
		out.Err = err
		d.log.Error().Err(err).Int("new_pid", out.NewPID).Msg("upgrade failed: this process serves on")
		d.notify("STATUS=" + d.status(d.config()) + "; the last upgrade failed: " + firstLine(err.Error()))
		return out
	}
	out.OK = true
	return out
}

// successor is the new process of an upgrade, as the old one sees it.
type successor struct {
	pid    int
	exited <-chan error // receives once, when it has ended: how
	// signal sends it a signal: SIGTERM to stop, os.Kill.
	signal func(os.Signal) error
}

// startSuccessor starts the new process of an upgrade with args (args[0]
// is this process's name, not used), the handshake socket being its fd 3;
// the caller closes its own copy of handshake. A variable so that tests can
// run the new daemon in this process, on the same socketpair
// (upgrade_test.go); the product's is execSuccessor.
var startSuccessor = execSuccessor

// execSuccessor starts the binary now at this process's executable path.
func execSuccessor(args []string, handshake *os.File) (*successor, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the binary: %w", err)
	}
	cmd := exec.Command(exe, args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{handshake} // fd 3
	cmd.Env = upgradeEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return &successor{pid: cmd.Process.Pid, exited: exited, signal: cmd.Process.Signal}, nil
}

// upgrade starts the new process and hands over; it returns the new
// process's pid (0 when it never started). On error the new process has
// been stopped.
func (d *Daemon) upgrade(ctx context.Context) (int, error) {
	if d.opts.Args == nil {
		return 0, errors.New("upgrade is not available: the daemon was not given its command line")
	}
	// The new process must find the latest runtime changes.
	d.saveState()
	fds, socks, err := d.handedFDs()
	if err != nil {
		return 0, err
	}
	defer closeAll(fds)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socketpair", err)
	}
	conn := pair[0]
	defer unix.Close(conn)
	theirs := os.NewFile(uintptr(pair[1]), "upgrade")
	next, err := startSuccessor(d.opts.Args, theirs)
	theirs.Close()
	if err != nil {
		return 0, err
	}
	fail := func(err error) (int, error) {
		wait := time.Duration(0)
		if errors.Is(err, errPeerGone) {
			wait = 5 * time.Second // it is exiting: say how
		}
		select {
		case werr := <-next.exited:
			return next.pid, fmt.Errorf("%w; new process (pid %d) %s", err, next.pid, exitText(werr))
		case <-time.After(wait):
		}
		// A new process that said nothing sensible is stopped, and
		// reaped, so it leaves nothing behind.
		_ = next.signal(syscall.SIGTERM)
		select {
		case <-next.exited:
		case <-time.After(5 * time.Second):
			_ = next.signal(os.Kill)
			<-next.exited
		}
		return next.pid, fmt.Errorf("%w; new process (pid %d) stopped", err, next.pid)
	}
	deadline := time.Now().Add(upgradeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	hello, extra, err := recvMsg(conn, time.Until(deadline))
	closeAll(extra)
	if err != nil {
		return fail(err)
	}
	if hello.Type != "hello" || hello.Version != handoverVersion {
		_ = sendMsg(conn, handoverMsg{Type: "error", Error: "unsupported handshake"}, nil)
		return fail(fmt.Errorf("the new binary speaks upgrade handshake version %d (%q), this one %d",
			hello.Version, hello.Type, handoverVersion))
	}
	// IDs from the new process start well after ours: it adopts ours, and
	// this process may still accept while the new one starts.
	nextID := d.srv.NextID() + 1<<20
	for i := 0; i < len(fds) || i == 0; i += fdsPerMessage {
		end := min(i+fdsPerMessage, len(fds))
		m := handoverMsg{Type: "sockets", Version: handoverVersion, Sockets: socks[i:end], More: end < len(fds), NextID: nextID}
		if err := sendMsg(conn, m, fds[i:end]); err != nil {
			return fail(err)
		}
	}
	ready, extra, err := recvMsg(conn, time.Until(deadline))
	closeAll(extra)
	switch {
	case err != nil:
		return fail(err)
	case ready.Type == "error":
		return fail(fmt.Errorf("the new process could not start: %s", ready.Error))
	case ready.Type != "ready":
		return fail(fmt.Errorf("upgrade handshake: %q where ready was expected", ready.Type))
	}
	d.handOver(next.pid)
	if cfg := d.config(); cfg.Upgrade.Handoff && hello.Handoff {
		d.handConnections(conn, cfg.Upgrade.HandoffTimeout)
	}
	if err := sendMsg(conn, handoverMsg{Type: "done"}, nil); err != nil {
		d.log.Warn().Err(err).Msg("upgrade: could not confirm the hand-over to the new process")
	}
	d.handOnce.Do(func() { close(d.handedOver) })
	go func() {
		// Reap the new process should it exit while this one drains.
		if werr := <-next.exited; werr != nil {
			d.log.Error().Err(werr).Int("pid", next.pid).Msg("the upgraded process exited")
		}
	}()
	return next.pid, nil
}

// handOver gives up the sockets to the new process pid, which serves.
func (d *Daemon) handOver(newPID int) {
	d.successor.Store(int64(newPID))
	// The service's main process is the new one from now on; its
	// notifications (READY, WATCHDOG) count, this one's no longer do.
	d.notify("MAINPID="+strconv.Itoa(newPID), fmt.Sprintf("STATUS=handed over to pid %d", newPID))
	d.srv.HandOff()
	d.retireAdmin()
	// The new process owns the state file and the locks from now on.
	d.state.freeze()
	d.log.Info().Int("new_pid", newPID).Int64("connections", d.srv.ActiveConnections()).
		Msg("upgrade: the new process serves; this one stopped accepting")
}

// handConnections hands this process's connections and UDP flows over to
// the new process on conn, within timeout; what is left then drains here.
// The new process's answer says what it adopted.
func (d *Daemon) handConnections(conn int, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	deadline, _ := ctx.Deadline()
	send := func(recs []l4.HandoffRecord, fds []int) error {
		sent := 0
		// As many records as keep a message within fdsPerMessage fds.
		for len(recs) > 0 {
			n, nfds := 0, 0
			for n < len(recs) && nfds+recs[n].FDs <= fdsPerMessage {
				nfds += recs[n].FDs
				n++
			}
			if n == 0 {
				return &l4.HandoffSendError{Sent: sent, Err: fmt.Errorf("a record with %d fds", recs[0].FDs)}
			}
			// A new process that stops reading holds this one no longer
			// than the hand-over's deadline.
			err := sendMsgBy(conn, handoverMsg{Type: "conns", Conns: recs[:n], More: true}, fds[:nfds], deadline)
			if err != nil {
				return &l4.HandoffSendError{Sent: sent, Err: err}
			}
			closeAll(fds[:nfds]) // they live on in the new process
			recs, fds = recs[n:], fds[nfds:]
			sent += n
		}
		return nil
	}
	st := d.srv.Handoff(ctx, send)
	ev := d.log.Info()
	if err := sendMsgBy(conn, handoverMsg{Type: "conns", More: false}, nil, time.Now().Add(time.Second)); err != nil {
		d.log.Error().Err(err).Msg("upgrade: the new process did not take the end of the hand-over")
	} else if m, fds, err := recvMsg(conn, timeout); err != nil || m.Type != "adopted" || m.Adopted == nil {
		closeAll(fds)
		d.log.Error().Err(err).Str("got", m.Type).Msg("upgrade: no word from the new process on what it adopted")
	} else {
		ev = ev.Int("adopted_tcp", m.Adopted.TCP).Int("adopted_clients", m.Adopted.Clients).
			Int("adopted_udp_flows", m.Adopted.Flows).Int("refused", m.Adopted.Refused)
	}
	ev.Int("tcp", st.TCP).Int("clients", st.Clients).Int("udp_flows", st.Flows).Int("lost", st.Lost).
		Int("left_to_drain", st.Left).Float64("took_seconds", time.Since(start).Seconds()).
		Msg("upgrade: connections handed over to the new process")
}

// handedFDs duplicates what the new process gets: every listening socket,
// the admin port's, the listener locks. The caller closes the fds.
func (d *Daemon) handedFDs() ([]int, []handedSocket, error) {
	socks, err := d.srv.Sockets()
	if err != nil {
		return nil, nil, err
	}
	var fds []int
	var meta []handedSocket
	for _, s := range socks {
		fds = append(fds, s.FD)
		meta = append(meta, handedSocket{Kind: s.Protocol, Listen: s.Listen.String(), Frontend: s.Frontend, Index: s.Index})
	}
	fail := func(err error) ([]int, []handedSocket, error) {
		closeAll(fds)
		return nil, nil, err
	}
	if afd, err := d.adminListenerFD(); err != nil {
		return fail(fmt.Errorf("admin port: %w", err))
	} else if afd >= 0 {
		fds = append(fds, afd)
		meta = append(meta, handedSocket{Kind: kindAdmin})
	}
	locks, err := d.locks.dups()
	if err != nil {
		return fail(fmt.Errorf("listener locks: %w", err))
	}
	for _, l := range locks {
		fds = append(fds, l.fd)
		meta = append(meta, handedSocket{Kind: kindLock, Lock: l.Name, Exclusive: l.Exclusive})
	}
	return fds, meta, nil
}

// upgradeEnv is the new process's environment: ours, with the handshake's
// fd named, and without WATCHDOG_PID, which names this process: the new
// one pings the watchdog once it is the main process.
func upgradeEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if strings.HasPrefix(kv, "WATCHDOG_PID=") || strings.HasPrefix(kv, handoverEnv+"=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, handoverEnv+"=3")
}

// exitText describes how a process ended.
func exitText(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exited with status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	}
	return err.Error()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
