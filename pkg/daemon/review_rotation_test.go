package daemon

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
)

// adminCall sends method path with token (and a session cookie when
// cookie is set) to the admin port at base and returns the status, the
// body and the session cookie the answer sets, if any.
func adminCall(t *testing.T, base, method, path, token, cookie, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "splicer_session", Value: cookie})
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	set := ""
	for _, c := range resp.Cookies() {
		if c.Name == "splicer_session" {
			set = c.Value
		}
	}
	return resp.StatusCode, string(b), set
}

// TestUsersChangeByAPIReload edits the users file (a user removed, one
// added, by `splicer user` as an operator would) and reloads through
// POST /api/v1/reload: as soon as that call has answered, the new user's
// token works, the removed user's token is refused with 401 and so is the
// browser session it had opened, and the audit log shows the reload and
// the refusal with who asked.
func TestUsersChangeByAPIReload(t *testing.T) {
	dir := t.TempDir()
	usersPath := filepath.Join(dir, "users")
	adminTok, err := admin.AddUser(usersPath, "ada", admin.Role{Name: config.RoleAdmin}, false)
	if err != nil {
		t.Fatal(err)
	}
	bobTok, err := admin.AddUser(usersPath, "bob", admin.Role{Name: config.RoleOperator}, false)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, auditPath := filepath.Join(dir, "audit.key"), filepath.Join(dir, "audit.log")
	replaceFile(t, keyPath, []byte("0123456789abcdef0123456789abcdef\n"))
	back := startDemo(t)
	build := func() (*config.Config, error) {
		return config.New().AdminListen("127.0.0.1:0").AdminUsersFile(usersPath).
			AdminAuditLog(auditPath, config.Secret{File: keyPath}).
			Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").Build()
	}
	cfg, err := build()
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{Load: build})
	base := "http://" + d.adminLn.Addr().String()

	if code, body, _ := adminCall(t, base, "GET", "/api/v1/stats", bobTok, "", ""); code != http.StatusOK {
		t.Fatalf("bob before the change: %d %s", code, body)
	}
	_, _, bobSession := adminCall(t, base, "POST", "/api/v1/session", "", "", `{"token":"`+bobTok+`"}`)
	if bobSession == "" {
		t.Fatal("bob's login set no session cookie")
	}

	// The operator's edit, with the CLI: remove bob, add carol.
	var out strings.Builder
	if err := admin.RunUser(t.Context(), []string{"remove", "-file", usersPath, "bob"}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := admin.RunUser(t.Context(), []string{"add", "-file", usersPath, "carol", "viewer"}, &out); err != nil {
		t.Fatal(err)
	}
	carolTok := strings.TrimSpace(out.String())
	// Until the reload the daemon serves the users it read.
	if code, _, _ := adminCall(t, base, "GET", "/api/v1/stats", carolTok, "", ""); code != http.StatusUnauthorized {
		t.Errorf("carol before the reload: %d, want 401", code)
	}
	if code, _, _ := adminCall(t, base, "GET", "/api/v1/stats", bobTok, "", ""); code != http.StatusOK {
		t.Errorf("bob before the reload: %d, want 200", code)
	}

	start := time.Now()
	code, body, _ := adminCall(t, base, "POST", "/api/v1/reload", adminTok, "", "{}")
	var res admin.ReloadResult
	if err := json.Unmarshal([]byte(body), &res); code != http.StatusOK || err != nil || !res.OK {
		t.Fatalf("reload: %d %s", code, body)
	}
	// The reload is synchronous: its answer means the new users are in
	// force, so the very next requests see them, no waiting.
	if code, body, _ := adminCall(t, base, "GET", "/api/v1/stats", carolTok, "", ""); code != http.StatusOK {
		t.Errorf("carol after the reload: %d %s, want 200", code, body)
	}
	const noUser = `{"error":"no valid credentials: the bearer token matches no user"}` + "\n"
	if code, body, _ := adminCall(t, base, "GET", "/api/v1/stats", bobTok, "", ""); code != http.StatusUnauthorized || body != noUser {
		t.Errorf("bob after the reload: %d %s, want 401 %s", code, body, noUser)
	}
	const ended = `{"error":"no valid credentials: the session has ended; log in again"}` + "\n"
	if code, body, _ := adminCall(t, base, "GET", "/api/v1/stats", "", bobSession, ""); code != http.StatusUnauthorized || body != ended {
		t.Errorf("bob's session after the reload: %d %s, want 401 %s", code, body, ended)
	}
	if took := time.Since(start); took >= time.Second {
		t.Errorf("new token working and removed one refused %v after the reload was asked for, want under 1 s", took)
	}

	f, err := os.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r admin.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{r.User, r.Role, r.Transport, r.Action, r.Target, r.Result}, "|"))
	}
	want := []string{
		"bob|operator|tcp|session.login|session|ok",
		"||tcp|stats|/api/v1/stats|denied: 401 no valid credentials: the bearer token matches no user",
		"ada|admin|tcp|reload|/api/v1/reload|ok",
		"||tcp|stats|/api/v1/stats|denied: 401 no valid credentials: the bearer token matches no user",
		"||tcp|stats|/api/v1/stats|denied: 401 no valid credentials: the session has ended; log in again",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStartRefusesFIFOUsersFile names a FIFO as the users file: New fails
// at once naming the setting, instead of waiting forever in open(2) for a
// writer, and the admin port never comes up.
func TestStartRefusesFIFOUsersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New().AdminListen("127.0.0.1:0").AdminUsersFile(path).
		Frontend("t").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		d, err := New(cfg, zerolog.Nop(), Options{})
		if err == nil {
			d.srv.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if want := `admin.users_file: file "` + path + `": not a regular file (p---------)`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want an error containing %s", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("New still blocked on the FIFO after 10 s")
	}
}
