package admin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// usersConfig writes a config with frontends pg and cache whose
// admin.users_file is users ("" for none), and returns its path.
func usersConfig(t *testing.T, dir, users string) string {
	t.Helper()
	text := "[admin]\nlisten = \"127.0.0.1:0\"\n"
	if users != "" {
		text += fmt.Sprintf("users_file = %q\n", users)
	}
	for _, fe := range []string{"pg", "cache"} {
		text += fmt.Sprintf("\n[[frontend]]\nname = %q\nlisten = \"127.0.0.1:0\"\n[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n", fe)
	}
	path := filepath.Join(dir, "splicer.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunUserWithConfig manages the users file a config names, as an
// operator does on the daemon's host: a role scoped to a frontend the
// config lacks is refused before the file is touched.
func TestRunUserWithConfig(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	cfg := usersConfig(t, dir, users)
	if _, err := runUser(t, "add", "-c", cfg, "bob", "operator:pg,cache"); err != nil {
		t.Fatal(err)
	}
	_, err := runUser(t, "add", "-c", cfg, "carol", "operator:pg,redis")
	if want := fmt.Sprintf(`role operator:pg,redis: %s has no frontend "redis"`, cfg); err == nil || err.Error() != want {
		t.Errorf("a scope the config lacks: %v\nwant: %s", err, want)
	}
	if _, err := runUser(t, "add", "-c", cfg, "-cert-only", "ci", "viewer"); err != nil {
		t.Fatal(err)
	}
	out, err := runUser(t, "list", "-c", cfg)
	if want := "NAME  ROLE               LOGIN\nbob   operator:pg,cache  token\nci    viewer             certificate\n"; err != nil || out != want {
		t.Errorf("list:\n%s%v\nwant:\n%s", out, err, want)
	}

	noUsers := usersConfig(t, t.TempDir(), "")
	missing := filepath.Join(dir, "missing.toml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "-c", noUsers}, noUsers + " sets no admin.users_file"},
		{[]string{"add", "-c", missing, "dan", "viewer"}, "load config: open " + missing + ": no such file or directory"},
		{[]string{"rotate", "-c", cfg, "zed"}, `user "zed": no such user`},
		{[]string{"add", "-c", cfg, "fr@nk!", "viewer"}, `user name "fr@nk!": only A-Z a-z 0-9 _ . @ - are allowed`},
		{[]string{"list", "-file", filepath.Join(dir, "nobody")},
			fmt.Sprintf(`admin.users_file: file %q: no such file or directory`, filepath.Join(dir, "nobody"))},
	} {
		if _, err := runUser(t, tc.args...); err == nil || err.Error() != tc.want {
			t.Errorf("splicer user %v: %v\nwant: %s", tc.args, err, tc.want)
		}
	}
	for _, args := range [][]string{{"add", "-c", cfg, "-role", "x"}, {"list", "-c", cfg, "extra"}} {
		if _, err := runUser(t, args...); !errors.Is(err, ErrUsage) {
			t.Errorf("splicer user %v: %v, want a usage error", args, err)
		}
	}
	if data, _ := os.ReadFile(users); strings.Count(string(data), "\n") != 2 {
		t.Errorf("the refusals changed the file:\n%s", data)
	}
}

// TestUsersFileEditRefusals edits users files that cannot be edited: a
// file that does not parse (its problems named by line, the file left as
// it is), a directory that does not exist, a link that loops.
func TestUsersFileEditRefusals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	broken := "alice admin " + goodDigest + "\nbob root -\nalice viewer -\n"
	os.WriteFile(path, []byte(broken), 0o600)
	_, err := AddUser(path, "carol", Role{Name: "viewer"}, false)
	want := path + `:2: user "bob": role "root" is not one of viewer, operator, admin (optionally followed by :FRONTEND,...)` + "\n" +
		path + `:3: user "alice" is already on line 1`
	var ue *UsersError
	if !errors.As(err, &ue) || err.Error() != want {
		t.Errorf("add to a broken file: %v\nwant: %s", err, want)
	}
	if err := RemoveUser(path, "bob"); !errors.As(err, &ue) {
		t.Errorf("remove from a broken file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != broken {
		t.Errorf("the broken file was changed:\n%s", data)
	}

	inMissing := filepath.Join(dir, "missing", "users")
	if _, err := AddUser(inMissing, "carol", Role{Name: "viewer"}, false); err == nil ||
		err.Error() != "users file: open "+filepath.Dir(inMissing)+": no such file or directory" {
		t.Errorf("a missing directory: %v", err)
	}
	loop := filepath.Join(dir, "loop")
	os.Symlink("loop", loop)
	if _, err := AddUser(loop, "carol", Role{Name: "viewer"}, false); err == nil ||
		err.Error() != "users file "+loop+": EvalSymlinks: too many links" {
		t.Errorf("a link that loops: %v", err)
	}
}

// leftovers lists what is in dir besides the names given.
func leftovers(t *testing.T, dir string, known ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.Contains(strings.Join(known, "/"), e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestUsersFileDiskFull adds a user on a full disk: the new file cannot
// be written, the command says why, the old file stays in force and no
// temporary file is left behind.
func TestUsersFileDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "size=16k")
	path := filepath.Join(dir, "users")
	if _, err := AddUser(path, "alice", Role{Name: "admin"}, false); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	fill(t, dir)
	_, err := AddUser(path, "bob", Role{Name: "viewer"}, false)
	if err == nil || !strings.HasPrefix(err.Error(), "users file: write "+filepath.Join(dir, ".users.")) ||
		!strings.HasSuffix(err.Error(), ": no space left on device") {
		t.Errorf("add on a full disk: %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("the users file changed:\n%s", after)
	}
	if left := leftovers(t, dir, "users", "filler"); left != nil {
		t.Errorf("left behind: %v", left)
	}
}

// TestUsersFileReadOnly adds a user where the users file's directory is
// read-only: refused, naming the directory's file system.
func TestUsersFileReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	if _, err := AddUser(path, "alice", Role{Name: "admin"}, false); err != nil {
		t.Fatal(err)
	}
	readOnly(t, dir)
	_, err := RotateUser(path, "alice")
	if err == nil || !strings.HasPrefix(err.Error(), "users file: open "+filepath.Join(dir, ".users.")) ||
		!strings.HasSuffix(err.Error(), ": read-only file system") {
		t.Errorf("rotate on a read-only directory: %v", err)
	}
	if users, err := LoadUsers(path); err != nil || len(users.List()) != 1 {
		t.Errorf("the users file after the refusal: %v, %v", users, err)
	}
}

// usersFileChild names the users file TestUsersFileUnreadable's child,
// running as nobody, is to read.
const usersFileChild = "SPLICER_TEST_UNREADABLE_USERS"

// TestUsersFileUnreadable reads and edits, as another user, a users file
// only root may read: the daemon's load and every `splicer user` command
// are refused naming the file, and the file is not replaced. As root, the
// test runs itself again as nobody.
func TestUsersFileUnreadable(t *testing.T) {
	path := os.Getenv(usersFileChild)
	if path == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root to make a file that another user cannot read")
		}
		path = filepath.Join(shortDir(t), "users")
		content := "alice admin " + goodDigest + "\n"
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.RunAsNobody(t, "TestUsersFileUnreadable", usersFileChild+"="+path)
		if data, _ := os.ReadFile(path); string(data) != content {
			t.Errorf("the users file changed:\n%s", data)
		}
		return
	}
	denied := fmt.Sprintf("file %q: permission denied", path)
	if _, err := LoadUsers(path); err == nil || err.Error() != "admin.users_file: "+denied {
		t.Errorf("load: %v\nwant: admin.users_file: %s", err, denied)
	}
	if _, err := runUser(t, "list", "-file", path); err == nil || err.Error() != "admin.users_file: "+denied {
		t.Errorf("list: %v", err)
	}
	for _, args := range [][]string{{"add", "-file", path, "bob", "viewer"}, {"rotate", "-file", path, "alice"}, {"remove", "-file", path, "alice"}} {
		if _, err := runUser(t, args...); err == nil || err.Error() != "users file: "+denied {
			t.Errorf("splicer user %v: %v\nwant: users file: %s", args, err, denied)
		}
	}
}
