package testutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Coverage of the code that runs in child processes.
//
// `go test -cover` (and make test-coverage, make audit) runs each test
// binary with GOCOVERDIR set to the directory it makes the binary's
// profile from when the tests end, and the profile takes in every
// counter file of that binary found there. So a child process that runs
// this binary's code (the test binary, or a copy, run as a program) and
// inherits the environment counts for the package's coverage, provided it
// exits through os.Exit or a return from main before the tests end: the
// counters are written on the way out, and a process killed with SIGKILL
// writes none. StopProcesses ends such children gracefully when coverage
// is measured; RunAsNobody hands the counters of its unprivileged child
// over to the parent's directory.

// Stopping a child when coverage is measured: SIGTERM, a second SIGTERM
// after stopHurry (splicer then closes the connections left at once
// rather than draining them for shutdown_timeout), SIGKILL after
// stopGrace more.
const (
	stopHurry = 2 * time.Second
	stopGrace = 10 * time.Second
)

// ChildCoverDir returns the directory where the child processes of this
// test binary write their coverage counters, or "" when the binary does
// not measure coverage.
func ChildCoverDir() string {
	if testing.CoverMode() == "" {
		return ""
	}
	return os.Getenv("GOCOVERDIR")
}

// StopProcesses ends the processes pids, which run this test binary's
// code (a splicer started by a test, and the processes it upgraded to),
// without waiting for those that are not children of this process to be
// reaped. Without coverage it kills them with SIGKILL, which costs a test
// nothing. When ChildCoverDir is set it stops them with SIGTERM, a second
// one after 2 s, and SIGKILL only after 10 s more, so that each exits
// through os.Exit and writes its counters; it fails t naming a process
// that had to be killed, or that left no counters when this binary has
// instrumented code that ran, since the coverage measured would silently
// miss what that process ran. Pids of 0 or less are ignored.
func StopProcesses(t testing.TB, pids ...int) {
	t.Helper()
	var live []int
	for _, pid := range pids {
		if pid > 0 {
			live = append(live, pid)
		}
	}
	dir := ChildCoverDir()
	if dir == "" {
		for _, pid := range live {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return
	}
	signal := func(sig syscall.Signal) {
		for _, pid := range live {
			if !processGone(pid) {
				syscall.Kill(pid, sig)
			}
		}
	}
	signal(syscall.SIGTERM)
	if !waitGone(live, stopHurry) {
		signal(syscall.SIGTERM)
		if !waitGone(live, stopGrace) {
			for _, pid := range live {
				if !processGone(pid) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("coverage: process %d did not stop within %v of SIGTERM and was killed: what it ran is not counted", pid, stopHurry+stopGrace)
				}
			}
			return
		}
	}
	if testing.Coverage() == 0 {
		// Nothing of this binary is instrumented (a -coverpkg list that
		// leaves out every package it imports), or none of it ran: its
		// children may well have no counters to write.
		return
	}
	for _, pid := range live {
		if !hasCounters(dir, pid) {
			t.Errorf("coverage: process %d exited without writing counters to GOCOVERDIR %s: what it ran is not counted", pid, dir)
		}
	}
}

// waitGone polls until every one of pids is gone, for at most d.
func waitGone(pids []int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		all := true
		for _, pid := range pids {
			all = all && processGone(pid)
		}
		if all {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processGone reports whether process pid has exited: it no longer exists,
// or it is a zombie its parent has not reaped yet (its exit hooks, which
// write the coverage counters, have run).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last parenthesis, since
	// comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}

// hasCounters reports whether dir holds a counter file of process pid
// (covcounters.HASH.PID.NANOTIME, the coverage runtime's name for it).
func hasCounters(dir string, pid int) bool {
	files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("covcounters.*.%d.*", pid)))
	return len(files) > 0
}

// childCoverFlags prepares the coverage of a child test binary that
// cannot write to ChildCoverDir (it runs as another user): it returns the
// flag and the environment entry that make the child write its counters
// to a directory of its own under parent, and a function, to call once
// the child has exited, that moves them to ChildCoverDir. Without
// coverage the child writes none: its flag is empty and GOCOVERDIR unset.
func childCoverFlags(t testing.TB, parent string) (args []string, env string, collect func()) {
	t.Helper()
	dst := ChildCoverDir()
	if dst == "" {
		return nil, "GOCOVERDIR=", func() {}
	}
	src := filepath.Join(parent, "cover")
	if err := os.Mkdir(src, 0o777); err != nil {
		t.Fatal(err)
	}
	// Any user may write there (Mkdir's mode is reduced by the umask).
	if err := os.Chmod(src, 0o777); err != nil {
		t.Fatal(err)
	}
	collect = func() {
		t.Helper()
		if err := moveCoverFiles(src, dst); err != nil {
			t.Errorf("coverage: the child's counters are not counted: %v", err)
		}
	}
	return []string{"-test.gocoverdir=" + src}, "GOCOVERDIR=" + src, collect
}

// moveCoverFiles copies the coverage files (covmeta.*, covcounters.*) of
// src to dst, each written under a temporary name and renamed, so that a
// reader of dst never sees half a file; a meta-data file dst already has
// (the same binary's) is left as it is.
func moveCoverFiles(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "covmeta.") && !strings.HasPrefix(name, "covcounters.") {
			continue
		}
		n++
		to := filepath.Join(dst, name)
		if _, err := os.Stat(to); err == nil && strings.HasPrefix(name, "covmeta.") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		tmp := filepath.Join(dst, "tmp."+name)
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, to); err != nil {
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("%s holds no coverage file", src)
	}
	return nil
}
