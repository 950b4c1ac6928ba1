package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const goodDigest = "sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"

func TestParseUsers(t *testing.T) {
	u, err := ParseUsers([]byte("# users\n\nalice admin "+goodDigest+"\n  bob\toperator:pg,redis   -\n"), "users")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range u.List() {
		got = append(got, fmt.Sprintf("%s %s %v line %d", x.Name, x.Role, x.HasToken, x.Line))
	}
	if want := "alice admin true line 3|bob operator:pg,redis false line 4"; strings.Join(got, "|") != want {
		t.Errorf("users %q, want %q", strings.Join(got, "|"), want)
	}

	bad := strings.Join([]string{
		"alice admin " + goodDigest,
		"alice viewer -",
		"bob root -",
		"carol viewer sha256:abc",
		"dave viewer " + strings.TrimPrefix(goodDigest, "sha256:"),
		"eve viewer",
		"-x viewer -",
		"fr@nk! viewer -",
		"gina viewer: -",
		"hal viewer - extra",
		strings.Repeat("x", 65) + " viewer -",
	}, "\n")
	_, err = ParseUsers([]byte(bad), "/etc/splicer/users")
	want := strings.Join([]string{
		`/etc/splicer/users:2: user "alice" is already on line 1`,
		`/etc/splicer/users:3: user "bob": role "root" is not one of viewer, operator, admin (optionally followed by :FRONTEND,...)`,
		`/etc/splicer/users:4: user "carol": the token digest must be "sha256:" and 64 hex digits, or "-" for no token`,
		`/etc/splicer/users:5: user "dave": the token digest must be "sha256:" and 64 hex digits, or "-" for no token`,
		`/etc/splicer/users:6: want 3 fields (name, role, token digest), got 2`,
		`/etc/splicer/users:7: user name "-x" must not start with -`,
		`/etc/splicer/users:8: user name "fr@nk!": only A-Z a-z 0-9 _ . @ - are allowed`,
		`/etc/splicer/users:9: user "gina": role "viewer:": "" is not a frontend name`,
		`/etc/splicer/users:10: want 3 fields (name, role, token digest), got 4`,
		`/etc/splicer/users:11: user name must be 1 to 64 characters, got 65`,
	}, "\n")
	var ue *UsersError
	if !errors.As(err, &ue) || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	if strings.Contains(err.Error(), "3a7bd3") {
		t.Error("an error repeats a digest")
	}
}

func TestTokens(t *testing.T) {
	tok, digest := NewToken()
	tok2, _ := NewToken()
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 || tok == tok2 || digest != TokenDigest(tok) {
		t.Errorf("token %q (and %q)", tok, tok2)
	}
	u := testUsers()
	if x, ok := u.ByToken(operatorToken); !ok || x.Name != "otto" {
		t.Errorf("ByToken(operator) = %v %v", x, ok)
	}
	for _, bad := range []string{"", "splicer_test-operator-toke", operatorToken + "x", strings.ToUpper(operatorToken)} {
		if _, ok := u.ByToken(bad); ok {
			t.Errorf("ByToken(%q) matched", bad)
		}
	}
	// A certificate-only user has no token, not the digest of "".
	certOnly := &Users{list: []User{{Name: "c", Role: Role{Name: "admin"}, Digest: TokenDigest("")}}}
	if _, ok := certOnly.ByToken(""); ok {
		t.Error("the empty token matched a user without a token")
	}
}

func runUser(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := RunUser(context.Background(), args, &out)
	return out.String(), err
}

// TestRunUser adds, lists, rotates and removes users on a file the
// commands create, and checks what the file holds and how it is kept.
func TestRunUser(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	tok, err := runUser(t, "add", "-file", path, "alice", "admin")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSuffix(tok, "\n")
	if !strings.HasPrefix(tok, TokenPrefix) || strings.Contains(tok, "\n") {
		t.Fatalf("add printed %q", tok)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new users file: %v, %v", fi.Mode(), err)
	}
	if _, err := runUser(t, "add", "-file", path, "bob", "operator:pg"); err != nil {
		t.Fatal(err)
	}
	if out, err := runUser(t, "add", "-file", path, "-cert-only", "ci", "viewer"); err != nil || out != "" {
		t.Fatalf("cert-only add: %q, %v", out, err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), tok) {
		t.Fatal("the users file holds the token itself")
	}
	users, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := users.ByToken(tok); !ok || u.Name != "alice" || u.Role.String() != "admin" {
		t.Errorf("alice's token finds %v %v", u, ok)
	}
	out, err := runUser(t, "list", "-file", path)
	if want := "NAME   ROLE         LOGIN\nalice  admin        token\nbob    operator:pg  token\nci     viewer       certificate\n"; err != nil || out != want {
		t.Errorf("list:\n%s%v\nwant:\n%s", out, err, want)
	}
	if _, err := runUser(t, "add", "-file", path, "alice", "viewer"); err == nil ||
		err.Error() != "user \"alice\" already exists (line 1); `splicer user rotate` gives it a new token" {
		t.Errorf("second add: %v", err)
	}

	// A comment survives edits; rotate changes the token in place.
	os.WriteFile(path, append([]byte("# managed by ops\n"), data...), 0o600)
	newTok, err := runUser(t, "rotate", "-file", path, "alice")
	if err != nil {
		t.Fatal(err)
	}
	users, _ = LoadUsers(path)
	if _, ok := users.ByToken(tok); ok {
		t.Error("the old token still matches after rotate")
	}
	if u, ok := users.ByToken(strings.TrimSpace(newTok)); !ok || u.Name != "alice" || u.Line != 2 {
		t.Errorf("the new token finds %+v %v", u, ok)
	}
	if _, err := runUser(t, "remove", "-file", path, "bob"); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || lines[0] != "# managed by ops" || !strings.HasPrefix(lines[1], "alice admin sha256:") || lines[2] != "ci viewer -" {
		t.Errorf("file after edits:\n%s", data)
	}
	if _, err := runUser(t, "remove", "-file", path, "bob"); err == nil || err.Error() != `user "bob": no such user` {
		t.Errorf("removing a missing user: %v", err)
	}

	for _, args := range [][]string{{}, {"add", "-file", path, "x"}, {"add", "-file", path, "x", "root"},
		{"list"}, {"frob", "-file", path}, {"list", "-file", path, "-c", "x.toml"}} {
		if _, err := runUser(t, args...); !errors.Is(err, ErrUsage) {
			t.Errorf("splicer user %v: %v, want a usage error", args, err)
		}
	}
	// A file others can read is refused, not rewritten.
	os.Chmod(path, 0o644)
	if _, err := runUser(t, "add", "-file", path, "dan", "viewer"); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Errorf("add to a world-readable file: %v", err)
	}
}

// TestUsersFileKeepsModeOwnerAndLinks edits a group-readable file owned by
// another group, through a Kubernetes-style symlink: the target is
// replaced, the link kept, and mode and group carried over.
func TestUsersFileKeepsModeOwnerAndLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file a group of its own")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "..2026", "users")
	os.Mkdir(filepath.Dir(target), 0o755)
	os.WriteFile(target, []byte("alice admin -\n"), 0o640)
	os.Chmod(target, 0o640)
	if err := os.Chown(target, 0, 65534); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "users")
	os.Symlink("..2026/users", link)
	if _, err := AddUser(link, "bob", Role{Name: "viewer"}, false); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	fi, _ := os.Stat(target)
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o640 || st.Gid != 65534 {
		t.Errorf("mode %v gid %d, want 0640 and 65534", fi.Mode().Perm(), st.Gid)
	}
	if users, err := LoadUsers(link); err != nil || len(users.List()) != 2 {
		t.Errorf("after the edit: %v %v", users, err)
	}
}

// TestConcurrentUserAdds runs many adds at once: the lock serialises them,
// so none is lost.
func TestConcurrentUserAdds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			if _, err := AddUser(path, fmt.Sprintf("u%02d", i), Role{Name: "viewer"}, false); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	users, err := LoadUsers(path)
	if err != nil || len(users.List()) != 20 {
		t.Fatalf("%v users, %v", users, err)
	}
}

// FuzzParseUsers feeds arbitrary text to the users-file parser: it never
// panics, every user it accepts has a valid name and role, and every
// problem names a line of the input.
func FuzzParseUsers(f *testing.F) {
	f.Add([]byte("alice admin " + goodDigest + "\nbob operator:pg,redis -\n# c\n"))
	f.Add([]byte("alice admin -\nalice viewer -\n"))
	f.Add([]byte("x viewer:a,a sha256:zz\n\t \n-y admin -"))
	f.Add([]byte("\xff\xfe viewer -\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := strings.Count(string(data), "\n") + 1
		users, err := ParseUsers(data, "users")
		if err != nil {
			var ue *UsersError
			if !errors.As(err, &ue) || len(ue.Problems) == 0 {
				t.Fatalf("error %v is not a *UsersError with problems", err)
			}
			for _, p := range ue.Problems {
				var n int
				if _, err := fmt.Sscanf(p, "%d:", &n); err != nil || n < 1 || n > lines {
					t.Fatalf("problem %q names no line of a %d-line input", p, lines)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, u := range users.List() {
			if checkUserName(u.Name) != nil || seen[u.Name] || !(Role{Name: u.Role.Name}).Can(PermStatsRead) {
				t.Fatalf("accepted user %+v", u)
			}
			seen[u.Name] = true
			again, err := ParseUsers([]byte(formatUser(u)), "users")
			if err != nil || len(again.List()) != 1 || formatUser(again.List()[0]) != formatUser(u) {
				t.Fatalf("user %+v does not survive formatting: %v", u, err)
			}
		}
	})
}
