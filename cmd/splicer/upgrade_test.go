package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// gone reports whether pid has exited (a zombie counts: it serves nothing).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// startedPIDs lists the pids of the "splicer started" lines in order.
func startedPIDs(p *proc) []int {
	var out []int
	for _, rec := range p.records() {
		if rec["message"] == "splicer started" {
			out = append(out, int(rec["pid"].(float64)))
		}
	}
	return out
}

// TestUpgradeUnderLoad upgrades twice under 150 new connections a second
// and 50 checksummed streams, once with `splicer upgrade` and once with
// SIGUSR2: no connect is refused, nothing is reset or corrupted, each old
// process keeps serving its connections and exits as soon as the last one
// ends, and the newest serves on.
func TestUpgradeUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("an 8-second load test")
	}
	dir := t.TempDir()
	e := []*echoServer{startEcho(t), startEcho(t)}
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, 30*time.Second)+
		frontendConfig("main", front, "", be{"e0", e[0].addr, 1}, be{"e1", e[1].addr, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	l := startLoad(t, front, 150, 50, 2000)
	time.Sleep(1500 * time.Millisecond)

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"upgrade", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut); code != exitOK {
		t.Fatalf("splicer upgrade: exit %d: %s%s", code, out.String(), errOut.String())
	}
	p.waitLog(10*time.Second, "splicer started", 2)
	pids := startedPIDs(p)
	if len(pids) != 2 || !strings.Contains(out.String(), fmt.Sprintf("pid %d now serves; pid %d drains", pids[1], pids[0])) {
		t.Fatalf("upgrade printed %q; started pids %v", out.String(), pids)
	}
	time.Sleep(1500 * time.Millisecond)
	syscall.Kill(pids[1], syscall.SIGUSR2)
	p.waitLog(30*time.Second, "splicer started", 3)
	pids = startedPIDs(p)
	time.Sleep(1500 * time.Millisecond)
	// The streams all opened on the first process: it drains them. The
	// second served short connections alone, and went once they ended.
	if gone(pids[0]) {
		t.Error("the first process exited while its streams were open")
	}

	l.check(t, 50)
	// Their last connections ended: the old processes go at once, not at
	// shutdown_timeout (30s).
	testutil.WaitFor(t, 10*time.Second, "the old processes gone", func() bool { return gone(pids[0]) && gone(pids[1]) })
	if code, _ := p.exited(5 * time.Second); code != 0 {
		t.Errorf("the first process exited %d", code)
	}
	echoOnce(t, front)
	if gone(pids[2]) {
		t.Fatal("the newest process is gone")
	}
	if st := p.stats(); st.Connections != 0 || len(st.Frontends) != 1 {
		t.Errorf("the newest process's stats: %+v", st)
	}
}

// TestUpgradeFailureKeepsServing tries two upgrades that cannot work: a
// binary that exits at once, then a real one that finds an invalid config.
// Each time the old process says why and serves on; a third upgrade, with
// everything fixed, goes through.
func TestUpgradeFailureKeepsServing(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "splicer")
	copyFile(t, testBinary(t), bin)
	e := startEcho(t)
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	good := baseConfig(t, dir, adminAddr, 5*time.Second) + frontendConfig("main", front, "", be{"e0", e.addr, 1})
	writeFile(t, path, good)
	p := startSplicer(t, bin, path, adminAddr)

	upgrade := func() (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"upgrade", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	// A package that installed a broken binary.
	writeFile(t, bin+".new", "#!/bin/sh\necho 'broken build' >&2\nexit 3\n")
	os.Chmod(bin+".new", 0o755)
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	if code, msg := upgrade(); code != exitFail || !strings.Contains(msg, "exit status 3") {
		t.Errorf("upgrade to a broken binary: exit %d, %q", code, msg)
	}
	echoOnce(t, front)

	// The right binary, a config it refuses.
	copyFile(t, testBinary(t), bin)
	writeFile(t, path, strings.Replace(good, `weight = 1`, `weight = 1000`, 1))
	badWeight := regexp.MustCompile(`the new process could not start: ` + regexp.QuoteMeta(path) +
		`:\d+: frontend "main": backend\[0\]\.weight: must be between 1 and 256, got 1000`)
	if code, msg := upgrade(); code != exitFail || !badWeight.MatchString(msg) {
		t.Errorf("upgrade with a bad config: exit %d, %q", code, msg)
	}
	echoOnce(t, front)
	if n := len(startedPIDs(p)); n != 1 {
		t.Fatalf("%d processes started, want the first alone", n)
	}

	writeFile(t, path, good)
	if code, msg := upgrade(); code != exitOK {
		t.Fatalf("upgrade: exit %d, %q", code, msg)
	}
	if code, ok := p.exited(10 * time.Second); !ok || code != 0 {
		t.Errorf("the old process: exited %v, code %d", ok, code)
	}
	echoOnce(t, front)
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tmp := to + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// fdLinks lists what pid's fds point at.
func fdLinks(t testing.TB, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if link, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, e.Name()+" "+link)
		}
	}
	slices.Sort(out)
	return out
}

// TestSecondInstanceRefused starts a second splicer on the addresses of a
// running one: it exits 1 naming the first, before binding anything, and
// the first keeps every fd and serves on.
func TestSecondInstanceRefused(t *testing.T) {
	dir := t.TempDir()
	e := startEcho(t)
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+frontendConfig("main", front, "", be{"e0", e.addr, 1}))
	first := startSplicer(t, testBinary(t), path, adminAddr)
	before := fdLinks(t, first.pid())

	// The second has its own admin port: only the frontend clashes.
	path2 := filepath.Join(dir, "second.toml")
	writeFile(t, path2, baseConfig(t, dir, freeAddr(t), time.Second)+frontendConfig("other", front, "", be{"e0", e.addr, 1}))
	second := launch(t, testBinary(t), path2, "")
	code, ok := second.exited(15 * time.Second)
	want := regexp.MustCompile(`listen tcp ` + regexp.QuoteMeta(front) + `: already served by splicer pid ` +
		strconv.Itoa(first.pid()) + ` \(config ` + regexp.QuoteMeta(path) + `\) \(lock .*\): stop that instance first, or replace it with \\"splicer upgrade\\"`)
	if !ok || code != exitFail || !want.MatchString(second.logs()) {
		t.Errorf("second instance: exited %v with %d, log:\n%s", ok, code, second.logs())
	}
	if strings.Contains(second.logs(), "admin port listening") {
		t.Error("the second instance bound its admin port before checking the locks")
	}
	if after := fdLinks(t, first.pid()); !slices.Equal(before, after) {
		t.Errorf("the first instance's fds changed:\n%v\n%v", before, after)
	}
	echoOnce(t, front)
}
