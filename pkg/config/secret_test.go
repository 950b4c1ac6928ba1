package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func TestSecretRead(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good"), "pa55\r\n\n", 0o600)
	writeFile(t, filepath.Join(dir, "cred"), "from-systemd\n", 0o400)
	empty := writeFile(t, filepath.Join(dir, "empty"), "\n", 0o600)
	open := writeFile(t, filepath.Join(dir, "open"), "x", 0o644)
	groupWritable := writeFile(t, filepath.Join(dir, "gw"), "x", 0o620)
	t.Setenv("SPLICER_TEST_SECRET", "from-env")
	t.Setenv("SPLICER_TEST_EMPTY", "")
	t.Setenv(CredentialsDirectoryEnv, dir)

	tests := []struct {
		s    Secret
		want string
		err  string
	}{
		{Secret{File: good}, "pa55", ""},
		{Secret{Env: "SPLICER_TEST_SECRET"}, "from-env", ""},
		{Secret{Credential: "cred"}, "from-systemd", ""},
		{Secret{}, "", ""},
		{Secret{File: empty}, "", `file "` + empty + `": the secret is empty`},
		{Secret{Env: "SPLICER_TEST_EMPTY"}, "", `env SPLICER_TEST_EMPTY: the secret is empty`},
		{Secret{Env: "SPLICER_TEST_UNSET"}, "", `env SPLICER_TEST_UNSET: variable unset: not available in this environment`},
		{Secret{File: filepath.Join(dir, "missing")}, "", `file "` + dir + `/missing": no such file or directory`},
		{Secret{File: dir}, "", `file "` + dir + `": not a regular file (d---------)`},
		{Secret{Credential: "missing"}, "", `credential missing: file "` + dir + `/missing": no such file or directory`},
	}
	// Ownership rules depend on who runs the test; root owns what it
	// writes, any other user owns its files.
	if os.Geteuid() == 0 {
		tests = append(tests,
			struct {
				s         Secret
				want, err string
			}{Secret{File: open}, "", `file "` + open +
				`": mode 0644 lets users other than its owner (root) and group read or change it; chmod 0640 or stricter`},
			struct {
				s         Secret
				want, err string
			}{Secret{File: groupWritable}, "", `file "` + groupWritable +
				`": mode 0620 lets users other than its owner (root) and group read or change it; chmod 0640 or stricter`})
	} else {
		tests = append(tests,
			struct {
				s         Secret
				want, err string
			}{Secret{File: open}, "", `file "` + open +
				`": mode 0644 lets users other than its owner read or change it; chmod 0600`})
	}
	for _, tc := range tests {
		got, err := tc.s.Read()
		if string(got) != tc.want || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
			t.Errorf("%v: Read() = %q, %v; want %q, %q", tc.s, got, err, tc.want, tc.err)
		}
	}

	t.Setenv(CredentialsDirectoryEnv, "")
	if _, err := (Secret{Credential: "cred"}).Read(); !errors.Is(err, ErrSecretUnavailable) {
		t.Errorf("credential without $CREDENTIALS_DIRECTORY: %v", err)
	}
}

// TestReadSecretFileFollowsLinks reads through a Kubernetes-style ..data
// symlink and checks the target, not the link (a link's own mode is 0777).
func TestReadSecretFileFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "..2026_01"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "..2026_01", "token"), "abc\n", 0o600)
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/token", filepath.Join(dir, "token")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSecretFile(filepath.Join(dir, "token"))
	if err != nil || string(got) != "abc\n" {
		t.Fatalf("ReadSecretFile = %q, %v", got, err)
	}
	if err := os.Chmod(filepath.Join(dir, "..2026_01", "token"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "token")); err == nil || !strings.Contains(err.Error(), "mode 0666") {
		t.Errorf("a world-writable target behind a link: %v", err)
	}
}

func TestReadSecretFileSizeLimit(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "big"), strings.Repeat("x", MaxSecretSize+1), 0o600)
	if _, err := ReadSecretFile(path); err == nil || !strings.HasSuffix(err.Error(), "larger than 65536 bytes") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestSecretString(t *testing.T) {
	for s, want := range map[Secret]string{
		{File: "/etc/k"}:  `file "/etc/k"`,
		{Env: "K"}:        "env K",
		{Credential: "k"}: "credential k",
		{}:                "none",
	} {
		if got := s.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", s, got, want)
		}
	}
}
