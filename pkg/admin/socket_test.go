package admin

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// shortDir returns a directory with a path short enough for sockets, mode
// 0755 so that other users can reach a socket in it.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "splicer-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestListenUnix(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "admin.sock")
	group := ""
	if os.Geteuid() == 0 {
		group = "65534"
	}
	ln, err := ListenUnix(path, 0o640, group)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o640 {
		t.Fatalf("socket file %v, %v", fi.Mode(), err)
	}
	if group != "" && fi.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Errorf("socket group %d, want 65534", fi.Sys().(*syscall.Stat_t).Gid)
	}
	if ln.Addr().String() != path {
		t.Errorf("Addr %s, want %s", ln.Addr(), path)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".s*")); len(leftovers) != 0 {
		t.Errorf("private directories left: %v", leftovers)
	}
	if _, err := ListenUnix(path, 0o600, ""); err == nil || !strings.Contains(err.Error(), "another process is serving it") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}

	// A stale socket, from a listener that did not remove its file, is
	// replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err = ListenUnix(path, 0o600, "")
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ln.Close()

	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o600)
	if _, err := ListenUnix(plain, 0o600, ""); err == nil || !strings.Contains(err.Error(), "exists and is not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	long := filepath.Join(dir, strings.Repeat("x", MaxSocketPath))
	if _, err := ListenUnix(long, 0o600, ""); err == nil || !strings.Contains(err.Error(), "must be at most 93") {
		t.Errorf("a path too long: %v", err)
	}
	if _, err := ListenUnix(path, 0o600, "no-such-group-here"); err == nil || !strings.HasPrefix(err.Error(), "admin.socket_group: ") {
		t.Errorf("unknown group: %v", err)
	}
}

// socketHelperEnv runs TestSocketPeerHelper as a client in a child process.
const socketHelperEnv = "SPLICER_TEST_SOCKET_HELPER"

// TestSocketPeerHelper is not a test: TestSocketPeerRoles runs the test
// binary as another user with socketHelperEnv set to a socket path, and
// this function then makes its requests there and prints the answers.
func TestSocketPeerHelper(t *testing.T) {
	path := os.Getenv(socketHelperEnv)
	if path == "" {
		t.Skip("the client half of TestSocketPeerRoles, run in a child process")
	}
	for _, line := range socketRequests(path) {
		fmt.Println("RESULT " + line)
	}
}

// socketRequests asks who it is and tries a drain over the socket at path,
// returning "STATUS BODY" per request.
func socketRequests(path string) []string {
	c := unixClient(path)
	var out []string
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/api/v1/session", ""},
		{"POST", statePath, `{"state":"drain"}`},
	} {
		r, _ := http.NewRequest(req.method, "http://splicer"+req.path, strings.NewReader(req.body))
		if req.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(r)
		if err != nil {
			out = append(out, "error "+err.Error())
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))))
	}
	return out
}

// TestSocketPeerRoles maps socket peers to roles by the uid SO_PEERCRED
// reports: this process (root) is admin, a process running as nobody is a
// viewer, a process of an unmapped uid is nobody at all. The other users'
// processes are this test binary, run again under their uid.
func TestSocketPeerRoles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a client process under other uids")
	}
	dir := shortDir(t)
	bin := filepath.Join(dir, "admin.test")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sec, auditPath := newAuditedSecurity(t, AuditOptions{})
	sec.access.Store(&Access{users: testUsers(), grants: []socketGrant{
		{key: "uid:0", byUID: true, id: 0, role: Role{Name: "admin"}},
		{key: "gid:65534", id: 65534, role: Role{Name: "viewer"}},
	}})
	src := newFakeSource()
	srv := New(src, nil, zerolog.Nop(), Options{Security: sec})
	path := filepath.Join(dir, "admin.sock")
	ln, err := ListenUnix(path, 0o666, "")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })

	asUser := func(uid, gid uint32) []string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^TestSocketPeerHelper$")
		cmd.Env = []string{socketHelperEnv + "=" + path}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as uid %d: %v\n%s", uid, err, out)
		}
		var results []string
		for _, line := range strings.Split(string(out), "\n") {
			if r, ok := strings.CutPrefix(line, "RESULT "); ok {
				results = append(results, r)
			}
		}
		return results
	}
	viewer := asUser(65534, 65534)
	want := []string{
		`200 {"user":"gid:65534","role":"viewer","via":"peer","permissions":["stats.read","connections.read"]}`,
		`403 {"error":"role viewer lacks permission backend.state"}`,
	}
	if strings.Join(viewer, "\n") != strings.Join(want, "\n") {
		t.Errorf("as nobody:\n%s\nwant:\n%s", strings.Join(viewer, "\n"), strings.Join(want, "\n"))
	}
	stranger := asUser(65533, 65533)
	want = []string{
		`200 {"user":"","role":"","via":"none","permissions":[]}`,
		`401 {"error":"no valid credentials: send \"Authorization: Bearer TOKEN\", log in on the page, or use the admin socket"}`,
	}
	if strings.Join(stranger, "\n") != strings.Join(want, "\n") {
		t.Errorf("as an unmapped uid:\n%s\nwant:\n%s", strings.Join(stranger, "\n"), strings.Join(want, "\n"))
	}
	if st := src.Stats().Frontends[0].Backends[0].State; st != "ready" {
		t.Fatalf("a refused peer drained the backend: %s", st)
	}
	root := socketRequests(path)
	if !strings.HasPrefix(root[0], `200 {"user":"uid:0","role":"admin","via":"peer"`) || !strings.HasPrefix(root[1], "200 ") {
		t.Errorf("as root: %q", root)
	}
	var got []string
	for _, r := range readAudit(t, auditPath) {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", r.User, r.Transport, strings.SplitN(r.Source, " ", 2)[1], r.Result))
	}
	want = []string{
		"gid:65534|unix|uid=65534 gid=65534|denied: 403 role viewer lacks permission backend.state",
		"|unix|uid=65533 gid=65533|denied: 401 no valid credentials: send \"Authorization: Bearer TOKEN\", log in on the page, or use the admin socket",
		"uid:0|unix|uid=0 gid=0|ok",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
