package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// checkUsersFile writes a config naming users as admin.users_file (on
// line 3) into dir and runs `splicer check` on it in process, bounded in
// time. It returns the exit code, stdout, and stderr without check's
// warnings (this host's limits).
func checkUsersFile(t *testing.T, dir, users string) (string, int, string, string) {
	t.Helper()
	cfgPath := filepath.Join(dir, "splicer.toml")
	cfg := "[admin]\nlisten = \"127.0.0.1:9090\"\nusers_file = \"" + users + "\"\n\n" +
		"[[frontend]]\nname = \"pg\"\nlisten = \"127.0.0.1:7000\"\n  [[frontend.backend]]\n  address = \"127.0.0.1:7001\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := runCLI(context.Background(), "check", "-c", cfgPath)
		done <- result{code, out, errOut}
	}()
	select {
	case r := <-done:
		var kept []string
		for _, l := range strings.SplitAfter(r.errOut, "\n") {
			if l != "" && !strings.HasPrefix(l, "warning: ") {
				kept = append(kept, l)
			}
		}
		return cfgPath, r.code, r.out, strings.Join(kept, "")
	case <-time.After(10 * time.Second):
		t.Fatalf("check of users_file %s still running after 10 s", users)
		return "", 0, "", ""
	}
}

const usersLine = "robot viewer -\n"

// writeOwned writes data to path with mode and owner uid:gid.
func writeOwned(t *testing.T, path, data string, mode os.FileMode, uid, gid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// TestCheckRefusesUsersFile runs `splicer check` on a config whose users
// file is missing, readable or writable by other users, or a FIFO (which
// would block a plain open until a writer came): each is an error naming
// the config's file and line, the setting and the file, with exit 1 and no
// summary. Root's file may be readable by its group (0640, PostgreSQL's
// rule for its key file; docs/security.md says why), any other owner's may
// not: TestCheckUnreadableUsersFileAsNobody runs that side, and a file the
// daemon cannot open at all, since for root, as the tests run, permission
// bits do not stop open(2).
func TestCheckRefusesUsersFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "users.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Geteuid(), os.Getegid()
	tooOpen := func(mode string) string {
		if uid == 0 {
			return "mode " + mode + " lets users other than its owner (root) and group read or change it; chmod 0640 or stricter"
		}
		return "mode " + mode + " lets users other than its owner read or change it; chmod 0600"
	}
	type refusal struct{ file, want string }
	refused := []refusal{
		{"nope", "no such file or directory"},
		{"users.0644", tooOpen("0644")},
		{"users.0604", tooOpen("0604")},
		{"users.0660", tooOpen("0660")},
		{"users.fifo", "not a regular file (p---------)"},
	}
	accepted := []string{"users.0600", "users.0400"}
	if uid == 0 {
		accepted = append(accepted, "users.0640")
	} else {
		refused = append(refused, refusal{"users.0640", tooOpen("0640")})
	}
	for _, mode := range []os.FileMode{0o644, 0o604, 0o660, 0o640, 0o600, 0o400} {
		writeOwned(t, filepath.Join(dir, fmt.Sprintf("users.%04o", mode)), usersLine, mode, uid, gid)
	}
	for _, tc := range refused {
		users := filepath.Join(dir, tc.file)
		cfgPath, code, out, errOut := checkUsersFile(t, dir, users)
		want := cfgPath + `:3: admin.users_file: file "` + users + `": ` + tc.want + "\n"
		if code != exitFail || out != "" || errOut != want {
			t.Errorf("%s: exit %d, stdout %q, stderr:\n%s\nwant exit %d and:\n%s", tc.file, code, out, errOut, exitFail, want)
		}
	}
	for _, file := range accepted {
		users := filepath.Join(dir, file)
		if _, code, out, errOut := checkUsersFile(t, dir, users); code != exitOK || errOut != "" ||
			!strings.Contains(out, "admin: tcp 127.0.0.1:9090; users from "+users+"; no audit log") {
			t.Errorf("%s: exit %d, stdout:\n%s\nstderr:\n%s", file, code, out, errOut)
		}
	}
}

// asNobodyEnv tells TestCheckUsersFileAsNobody it is the unprivileged
// child and where its files are.
const asNobodyEnv = "SPLICER_TEST_CHECK_AS_NOBODY"

// TestCheckUnreadableUsersFileAsNobody runs check as user nobody, as the
// daemon runs as its own user under systemd, against files root made: a
// root-owned 0600 file nobody cannot open (permission denied) is an error;
// a root-owned 0640 file of nobody's group is readable and accepted (the
// PostgreSQL rule: root keeps it and grants the service's group read
// access); nobody's own file at 0640 is refused, as its group is other
// users.
func TestCheckUnreadableUsersFileAsNobody(t *testing.T) {
	if dir := os.Getenv(asNobodyEnv); dir != "" {
		checkAsNobody(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to make root's and nobody's files and to run check as nobody")
	}
	dir, err := os.MkdirTemp("", "splicer-check-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil { // nobody writes its config here
		t.Fatal(err)
	}
	writeOwned(t, filepath.Join(dir, "root.0600"), usersLine, 0o600, 0, 0)
	writeOwned(t, filepath.Join(dir, "root-nogroup.0640"), usersLine, 0o640, 0, 65534)
	writeOwned(t, filepath.Join(dir, "nobody.0640"), usersLine, 0o640, 65534, 65534)
	testutil.RunAsNobody(t, "TestCheckUnreadableUsersFileAsNobody", asNobodyEnv+"="+dir)
}

func checkAsNobody(t *testing.T, dir string) {
	if os.Geteuid() != 65534 {
		t.Fatalf("running as uid %d, want nobody (65534)", os.Geteuid())
	}
	for _, tc := range []struct{ file, want string }{
		{"root.0600", "permission denied"},
		{"nobody.0640", "mode 0640 lets users other than its owner read or change it; chmod 0600"},
	} {
		users := filepath.Join(dir, tc.file)
		cfgPath, code, out, errOut := checkUsersFile(t, t.TempDir(), users)
		want := cfgPath + `:3: admin.users_file: file "` + users + `": ` + tc.want + "\n"
		if code != exitFail || out != "" || errOut != want {
			t.Errorf("%s: exit %d, stdout %q, stderr:\n%s\nwant exit %d and:\n%s", tc.file, code, out, errOut, exitFail, want)
		}
	}
	users := filepath.Join(dir, "root-nogroup.0640")
	if _, code, out, errOut := checkUsersFile(t, t.TempDir(), users); code != exitOK || errOut != "" ||
		!strings.Contains(out, "users from "+users) {
		t.Errorf("root's 0640 file of nobody's group: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
