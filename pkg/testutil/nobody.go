package testutil

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RunAsNobody runs test (a test name of the calling test binary) again in
// a copy of the binary as user nobody, with env ("NAME=value") added so
// the test knows it is the child. It fails the calling test when the
// child fails, skips it when the child skipped, and logs the child's
// output. The caller must be root. When the binary measures coverage, what
// the child ran counts too (see ChildCoverDir).
func RunAsNobody(t testing.TB, test, env string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "splicer-as-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Nobody must reach the copy: MkdirTemp makes the directory 0700.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	if err := copyExecutable(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	// Nobody cannot write to this binary's GOCOVERDIR: the child writes
	// its coverage to a directory of its own, moved over once it exits.
	coverArgs, coverEnv, collectCover := childCoverFlags(t, dir)
	cmd := exec.Command(bin, append([]string{"-test.run=^" + test + "$", "-test.v", "-test.count=1"}, coverArgs...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env, coverEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		collectCover()
	}
	t.Logf("as nobody:\n%s", out)
	if err != nil {
		t.Fatalf("the unprivileged run failed: %v", err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skip("the unprivileged run skipped; see its output")
	}
}

// copyExecutable copies the file from to a new file to, mode 0755.
func copyExecutable(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// OpenFDs counts the calling process's open file descriptors.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
