package admin

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestListenUnixRefusals creates the admin socket where it cannot be: in
// a directory that is missing, under a file, on a read-only file system,
// or over a stale socket that cannot be removed. Each is refused naming
// the path and the reason, and nothing is left behind.
func TestListenUnixRefusals(t *testing.T) {
	dir := shortDir(t)
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o600)
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing", "admin.sock"), "admin socket: stat " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{filepath.Join(plain, "admin.sock"), "admin socket: lstat " + filepath.Join(plain, "admin.sock") + ": not a directory"},
	} {
		if _, err := ListenUnix(tc.path, 0o600, ""); err == nil || err.Error() != tc.want {
			t.Errorf("ListenUnix(%s): %v\nwant: %s", tc.path, err, tc.want)
		}
	}

	ro := shortDir(t)
	path := filepath.Join(ro, "admin.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	writable := readOnly(t, ro)
	if _, err := ListenUnix(path, 0o600, ""); err == nil ||
		err.Error() != "admin socket: removing a stale socket: remove "+path+": read-only file system" {
		t.Errorf("over a stale socket on a read-only file system: %v", err)
	}
	writable()
	os.Remove(path)
	readOnly(t, ro)
	if _, err := ListenUnix(path, 0o600, ""); err == nil || !strings.HasPrefix(err.Error(), "admin socket: mkdir "+filepath.Join(ro, ".s")) ||
		!strings.HasSuffix(err.Error(), ": read-only file system") {
		t.Errorf("on a read-only file system: %v", err)
	}
	if ents, _ := os.ReadDir(ro); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestListenUnixGroupByName gives the socket a group named as in
// admin.socket_group.
func TestListenUnixGroupByName(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the socket the group root")
	}
	path := filepath.Join(shortDir(t), "admin.sock")
	ln, err := ListenUnix(path, 0o660, "root")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket %v gid %d; want 0660 and gid 0", fi.Mode(), gid)
	}
}
