package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
)

// backendOf finds a backend in the stats.
func backendOf(st stats.Stats, frontend, name string) (stats.BackendStats, bool) {
	for _, fe := range st.Frontends {
		if fe.Name != frontend {
			continue
		}
		for _, b := range fe.Backends {
			if b.Name == name {
				return b, true
			}
		}
	}
	return stats.BackendStats{}, false
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code, ok := p.exited(15 * time.Second); !ok || code != 0 {
		p.t.Fatalf("splicer stop: exited %v, code %d", ok, code)
	}
}

// TestStateFileSurvivesRestart drains a backend and re-weights another
// through the CLI, restarts: both changes are back. A config that changes
// the re-weighted backend's weight wins over the saved one; the drain
// stays. A truncated state file is reported and ignored.
func TestStateFileSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e0, e1 := startEcho(t), startEcho(t)
	adminAddr := freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	config := func(w1 int) string {
		return baseConfig(t, dir, adminAddr, time.Second) +
			frontendConfig("main", "127.0.0.1:0", "", be{"e0", e0.addr, 1}, be{"e1", e1.addr, w1})
	}
	writeFile(t, path, config(1))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	for _, args := range [][]string{{"drain", "main", "e0"}, {"weight", "main", "e1", "5"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"backend", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, args...), &out, &errOut); code != exitOK {
			t.Fatalf("splicer backend %v: %d %s", args, code, errOut.String())
		}
	}
	p.stop()

	check := func(p *proc, wantState string, wantWeight int) {
		t.Helper()
		st := p.stats()
		b0, _ := backendOf(st, "main", "e0")
		b1, _ := backendOf(st, "main", "e1")
		if b0.State != wantState || b1.Weight != wantWeight {
			t.Errorf("after restart: e0 %s, e1 weight %d; want %s, %d", b0.State, b1.Weight, wantState, wantWeight)
		}
	}
	p = startSplicer(t, testBinary(t), path, adminAddr)
	check(p, "drain", 5)
	p.stop()

	writeFile(t, path, config(2))
	p = startSplicer(t, testBinary(t), path, adminAddr)
	check(p, "drain", 2)
	p.stop()

	state := filepath.Join(dir, "state.json")
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, data[:len(data)/2], 0o640); err != nil {
		t.Fatal(err)
	}
	p = startSplicer(t, testBinary(t), path, adminAddr)
	check(p, "ready", 2)
	if !regexp.MustCompile(`"level":"warn","error":"corrupt: unexpected EOF","state_file":"` + regexp.QuoteMeta(state) +
		`",.*"message":"state file ignored: starting with the configured backend states"`).MatchString(p.logs()) {
		t.Errorf("no warning about the truncated state file:\n%s", p.logs())
	}
}

// TestNotifySequence runs the daemon with a NOTIFY_SOCKET, as systemd does
// for Type=notify, and checks what it says and in which order: READY=1
// once serving, RELOADING=1 with MONOTONIC_USEC then READY=1 around a
// reload, STOPPING=1 on SIGTERM.
func TestNotifySequence(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := startEcho(t)
	adminAddr := freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+frontendConfig("main", "127.0.0.1:0", "", be{"e0", e.addr, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr, "NOTIFY_SOCKET="+sock)

	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		ln.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	expect := func(want string) {
		t.Helper()
		if got := next(); !regexp.MustCompile(want).MatchString(got) {
			t.Fatalf("notification %q, want one matching %q", got, want)
		}
	}
	expect(`^READY=1\nSTATUS=serving 1 frontends \(config ` + regexp.QuoteMeta(path) + `\)\n$`)
	p.cmd.Process.Signal(syscall.SIGHUP)
	expect(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\nSTATUS=reloading the configuration\n$`)
	expect(`^READY=1\nSTATUS=serving 1 frontends`)
	writeFile(t, path, "not toml")
	p.cmd.Process.Signal(syscall.SIGHUP)
	expect(`^RELOADING=1\n`)
	expect(`^READY=1\nSTATUS=serving 1 frontends .*; the last reload failed with 1 problem\(s\)\n$`)
	p.cmd.Process.Signal(syscall.SIGTERM)
	expect(`^STOPPING=1\nSTATUS=stopping: draining 0 connections\n$`)
	if code, _ := p.exited(10 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	if got := strings.Count(p.logs(), "service manager notification failed"); got != 0 {
		t.Errorf("%d notifications failed", got)
	}
}
