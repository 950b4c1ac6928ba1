package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// tmux runs tmux commands on a server of its own (its socket in a
// temporary directory), so a test never touches anyone else's sessions.
type tmux struct {
	t      *testing.T
	socket string
}

func startTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("install tmux (Debian package tmux) to run this test")
	}
	x := &tmux{t: t, socket: filepath.Join(t.TempDir(), "tmux.sock")}
	t.Cleanup(func() { exec.Command("tmux", "-S", x.socket, "kill-server").Run() })
	return x
}

func (x *tmux) run(args ...string) string {
	x.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", x.socket}, args...)...)
	cmd.Env = append(os.Environ(), "TMUX=") // not nested in the caller's tmux
	out, err := cmd.CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen is what the pane shows now.
func (x *tmux) screen() string { return x.run("capture-pane", "-p", "-t", "top") }

// waitScreen waits until the pane shows every one of want.
func (x *tmux) waitScreen(want ...string) string {
	x.t.Helper()
	var s string
	testutil.WaitFor(x.t, 20*time.Second, "the screen to show "+strings.Join(want, ", "), func() bool {
		s = x.screen()
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
	return s
}

// TestTopInTmux runs `splicer top` on a real terminal, a tmux pane 160
// columns wide: it shows the frontend and its backends, moves the
// selection with the arrow keys, drains the selected backend after the
// confirmation, cancels a maint, makes it ready again, and quits on q with
// the terminal given back (the pane's shell prompt is there again).
func TestTopInTmux(t *testing.T) {
	x := startTmux(t)
	dir := t.TempDir()
	e0, e1 := startEcho(t), startEcho(t)
	adminAddr := freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+
		frontendConfig("main", "127.0.0.1:0", "", be{"e0", e0.addr, 1}, be{"e1", e1.addr, 1}))
	startSplicer(t, testBinary(t), path, adminAddr)

	// A shell in the pane runs top, so that quitting leaves the shell's
	// prompt: proof that top gave the terminal back.
	x.run("new-session", "-d", "-s", "top", "-x", "160", "-y", "30", "sh")
	x.run("send-keys", "-t", "top", "PS1='prompt$ '; export "+asMainEnv+"=1 "+admin.AdminEnv+"="+adminAddr+
		" "+admin.TokenFileEnv+"="+adminTokenFile(dir)+"; clear", "Enter")
	x.waitScreen("prompt$")
	x.run("send-keys", "-t", "top", testBinary(t)+" top -interval 300ms; echo top exited $?", "Enter")
	s := x.waitScreen("NAME", "STATE", "CONN/S", "main", "e0", "e1", "↑/↓ select  d drain  r ready  m maint  q quit")
	if !strings.Contains(s, "connections 0/10000") || !strings.Contains(s, adminAddr) {
		t.Errorf("header:\n%s", s)
	}

	c := adminClient(t, dir, adminAddr)
	state := func(name string) string {
		st, err := c.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := backendOf(st, "main", name)
		return b.State
	}
	x.run("send-keys", "-t", "top", "Down")
	x.run("send-keys", "-t", "top", "d")
	x.waitScreen("drain main/e1? y to confirm, any other key cancels")
	if got := state("e1"); got != "ready" {
		t.Fatalf("e1 %s before the confirmation", got)
	}
	x.run("send-keys", "-t", "top", "y")
	x.waitScreen("main/e1: state drain")
	testutil.WaitFor(t, 5*time.Second, "e1 drained", func() bool { return state("e1") == "drain" })
	x.waitScreen("  e1  drain") // the row shows it at the next refresh

	x.run("send-keys", "-t", "top", "Up")
	x.run("send-keys", "-t", "top", "m")
	x.waitScreen("maint main/e0? y to confirm")
	x.run("send-keys", "-t", "top", "n")
	x.waitScreen("maint cancelled")
	if got := state("e0"); got != "ready" {
		t.Errorf("a cancelled maint left e0 %s", got)
	}
	x.run("send-keys", "-t", "top", "j")
	x.run("send-keys", "-t", "top", "r")
	testutil.WaitFor(t, 5*time.Second, "e1 ready", func() bool { return state("e1") == "ready" })

	x.run("send-keys", "-t", "top", "q")
	s = x.waitScreen("top exited 0", "prompt$")
	if strings.Contains(s, "CONN/S") {
		t.Errorf("top's screen is still there after it quit:\n%s", s)
	}
}
