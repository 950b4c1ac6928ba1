package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopChildEnv makes this test binary a child for TestStopProcesses: it
// says ready, then exits 0 on SIGTERM, as splicer does.
const stopChildEnv = "SPLICER_TESTUTIL_STOP_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(stopChildEnv) == "1" {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM)
		fmt.Println("ready")
		<-stop
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStopProcesses stops a child running this binary: with SIGKILL when
// coverage is not measured; with SIGTERM when it is, the child exiting 0
// with its counters written to GOCOVERDIR.
func TestStopProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), stopChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", line)
	}
	StopProcesses(t, cmd.Process.Pid, 0)
	err = cmd.Wait()
	var ee *exec.ExitError
	if ChildCoverDir() == "" {
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("without coverage the child ended with %v; want SIGKILL", err)
		}
		return
	}
	if err != nil {
		t.Errorf("with coverage the child ended with %v; want exit 0 on SIGTERM", err)
	}
	// A child writes counters when the binary has instrumented code: not
	// so under the audit's -coverpkg, which lists only the product's
	// packages, none of which this package imports.
	if testing.Coverage() > 0 && !hasCounters(ChildCoverDir(), cmd.Process.Pid) {
		t.Errorf("the child wrote no counters to %s", ChildCoverDir())
	}
}

// TestProcessGone tells a running process from one that exited, reaped or
// not: a zombie's exit hooks, which write coverage counters, have run.
func TestProcessGone(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if processGone(pid) {
		t.Error("a running process is gone")
	}
	cmd.Process.Kill()
	WaitFor(t, 5*time.Second, "the killed child gone before it is reaped", func() bool { return processGone(pid) })
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || !strings.Contains(string(b), ") Z ") {
		t.Errorf("gone but not a zombie: %q %v", b, err)
	}
	cmd.Wait()
	if !processGone(pid) {
		t.Error("a reaped process is not gone")
	}
}

// TestMoveCoverFiles moves a child's counters and meta-data into the
// parent's directory, keeps the parent's meta-data file, leaves no
// temporary file, and fails on a directory without coverage files.
func TestMoveCoverFiles(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	files := map[string]string{
		filepath.Join(src, "covmeta.abc"):             "child meta",
		filepath.Join(src, "covcounters.abc.4242.17"): "child counters",
		filepath.Join(src, "other"):                   "not coverage",
		filepath.Join(dst, "covmeta.abc"):             "parent meta",
		filepath.Join(dst, "covcounters.abc.4141.16"): "parent counters",
	}
	for name, text := range files {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := moveCoverFiles(src, dst); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dst)
	var got []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dst, e.Name()))
		got = append(got, e.Name()+": "+string(b))
	}
	want := "covcounters.abc.4141.16: parent counters\ncovcounters.abc.4242.17: child counters\ncovmeta.abc: parent meta"
	if strings.Join(got, "\n") != want {
		t.Errorf("dst holds:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	if !hasCounters(dst, 4242) || hasCounters(dst, 424) || hasCounters(dst, 17) {
		t.Error("hasCounters does not match the pid field alone")
	}
	if err := moveCoverFiles(t.TempDir(), dst); err == nil || !strings.Contains(err.Error(), "holds no coverage file") {
		t.Errorf("an empty directory: %v", err)
	}
}
