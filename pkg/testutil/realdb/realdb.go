package realdb

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Process is a server process started by a test.
type Process struct {
	t testing.TB
	// Name is the binary and Args its arguments, used by every Start.
	Name string
	Args []string
	// Cred runs the process as another user; nil runs it as this one.
	Cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{}
	// out is the file the output of the last Start goes to when the
	// test is not verbose, for the message of a process that exited. A
	// file, not a pipe: Wait would wait for a pipe's copier, and so for
	// every child the server forked and left holding it.
	out string
}

// Start runs the process; the test's cleanup kills it if it still runs.
// With -v its output goes to the test's stderr.
func (p *Process) Start() {
	p.t.Helper()
	p.cmd = exec.Command(p.Name, p.Args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.Cred, Pdeathsig: syscall.SIGKILL}
	if testing.Verbose() {
		p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	} else {
		f, err := os.CreateTemp(p.t.TempDir(), filepath.Base(p.Name)+"-*.log")
		if err != nil {
			p.t.Fatal(err)
		}
		defer f.Close() // the child has its own copy once started
		p.out = f.Name()
		p.cmd.Stdout, p.cmd.Stderr = f, f
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.Name, err)
	}
	// done is closed once Wait returns: Running and Wait may both look,
	// any number of times.
	done := make(chan struct{})
	p.done = done
	cmd := p.cmd
	go func() {
		cmd.Wait()
		close(done)
	}()
	p.t.Cleanup(func() {
		if p.Running() {
			p.Stop(syscall.SIGKILL)
		}
	})
}

// Signal sends sig without waiting.
func (p *Process) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.Name, err)
	}
}

// Stop sends sig and waits for the process to exit.
func (p *Process) Stop(sig syscall.Signal) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(sig)
	p.Wait()
}

// Wait waits for the process to exit, killing it after 30 s.
func (p *Process) Wait() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s did not exit", p.Name)
	}
}

// Running reports whether the process has not exited: its Wait, which
// alone may touch the Cmd's state meanwhile, has not returned.
func (p *Process) Running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// outputTail bounds what Output returns: the lines that say why a server
// stopped are its last.
const outputTail = 16 << 10

// Output returns the end of what the process of the last Start wrote, when
// the test is not verbose (with -v it goes to the test's stderr).
func (p *Process) Output() string {
	if p.out == "" {
		return ""
	}
	b, err := os.ReadFile(p.out)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-outputTail):])
}

// FreePort returns a loopback address with a port nothing listens on now,
// for a server that must be told its port.
func FreePort(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// OwnedTempDir is a temporary directory owned by cred's user (this
// process's when nil), removed when the test ends.
func OwnedTempDir(t testing.TB, cred *syscall.Credential) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "splicer-realdb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// unprivileged returns who runs a server that refuses root (PostgreSQL):
// nil (this process's user) unless the test runs as root, then the
// account named name, or the test is skipped.
func unprivileged(t testing.TB, name string) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("running as root without a %s account (%v): the server refuses to run as root", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// lookFirst returns the path of the first of names that exists, looked up
// on PATH unless it is a path; "" when none does.
func lookFirst(names ...string) string {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// run runs a command to completion as cred and fails the test with its
// output when it fails.
func run(t testing.TB, cred *syscall.Credential, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
	}
	return string(out)
}
