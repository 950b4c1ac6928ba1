package admin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// loginSession posts token to the session API of h and returns the session
// cookie's value and the CSRF token the answer carries.
func loginSession(t *testing.T, h http.Handler, token string) (cookie, csrf string) {
	t.Helper()
	got := doAs(t, h, "", "POST", sessionPath, `{"token":"`+token+`"}`)
	if got.status != http.StatusOK {
		t.Fatalf("login: %d %s", got.status, got.body)
	}
	var info sessionInfo
	if err := json.Unmarshal([]byte(got.body), &info); err != nil {
		t.Fatal(err)
	}
	resp := http.Response{Header: got.header}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c.Value
		}
	}
	if cookie == "" || info.CSRF == "" || info.Via != ViaSession {
		t.Fatalf("login gave cookie %q, answer %s", cookie, got.body)
	}
	return cookie, info.CSRF
}

// TestSessionChangeNeedsCSRFToken makes changes with the session cookie the
// page holds: without X-CSRF-Token, with a wrong one and with another
// session's, each is refused with 403, audited as denied with the user, and
// changes nothing; with the session's own token the change applies. A read
// needs no token.
func TestSessionChangeNeedsCSRFToken(t *testing.T) {
	src := newFakeSource()
	sec, auditPath := newAuditedSecurity(t, AuditOptions{})
	h := newTestServer(src, Options{Security: sec}).Handler()
	cookie, csrf := loginSession(t, h, operatorToken)
	_, otherCSRF := loginSession(t, h, adminToken)
	if otherCSRF == csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	const refused = `{"error":"missing or wrong X-CSRF-Token header for a change made with the session cookie"}` + "\n"
	withCookie := []string{"Cookie", sessionCookie + "=" + cookie, "Origin", "http://127.0.0.1:9090", "Sec-Fetch-Site", "same-origin"}
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"no token", nil},
		{"empty token", []string{csrfHeader, ""}},
		{"wrong token", []string{csrfHeader, csrf[:len(csrf)-1] + "x"}},
		{"another session's token", []string{csrfHeader, otherCSRF}},
	} {
		got := doAs(t, h, "", "POST", statePath, `{"state":"maint"}`, append(withCookie, tc.headers...)...)
		if got.status != http.StatusForbidden || got.body != refused {
			t.Errorf("%s: %d %s, want 403 %s", tc.name, got.status, got.body, refused)
		}
		if st := src.Stats().Frontends[0].Backends[0].State; st != "ready" {
			t.Fatalf("%s: the refused change applied: backend a is %s", tc.name, st)
		}
	}
	if got := doAs(t, h, "", "GET", "/api/v1/stats", "", withCookie...); got.status != http.StatusOK {
		t.Errorf("read with the cookie and no CSRF token: %d %s", got.status, got.body)
	}
	got := doAs(t, h, "", "POST", statePath, `{"state":"maint"}`, append(withCookie, csrfHeader, csrf)...)
	if got.status != http.StatusOK {
		t.Fatalf("with the session's CSRF token: %d %s", got.status, got.body)
	}
	if st := src.Stats().Frontends[0].Backends[0].State; st != "maint" {
		t.Errorf("after the accepted change backend a is %s, want maint", st)
	}

	var lines []string
	for _, r := range readAudit(t, auditPath) {
		lines = append(lines, strings.Join([]string{r.User, r.Role, r.Source, r.Transport, r.Action, r.Target, r.Previous, r.New, r.Result}, "|"))
	}
	denied := "otto|operator|127.0.0.1:40000|tcp|backend.state|" + statePath + "|||" +
		"denied: 403 missing or wrong X-CSRF-Token header for a change made with the session cookie"
	want := []string{
		"otto|operator|127.0.0.1:40000|tcp|session.login|session||logged in|ok",
		"ada|admin|127.0.0.1:40000|tcp|session.login|session||logged in|ok",
		denied, denied, denied, denied,
		"otto|operator|127.0.0.1:40000|tcp|backend.state|pg/a|ready|maint|ok",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// cookieLine matches the session cookie as Set-Cookie carries it; the
// groups are the value and the attributes after it.
var cookieLine = regexp.MustCompile(`^` + sessionCookie + `=([A-Za-z0-9_-]*)((?:; [^;]+)*)$`)

// sessionSetCookie posts to the session API at base with client (login
// with token, or logout when token is "") and returns the value and the
// attributes of the one Set-Cookie the answer carries.
func sessionSetCookie(t *testing.T, client *http.Client, base, token string) (value, attrs string) {
	t.Helper()
	method, body := "POST", `{"token":"`+token+`"}`
	if token == "" {
		method, body = "DELETE", ""
	}
	req, err := http.NewRequest(method, base+sessionPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token == "" {
		req.Header.Set("Authorization", "Bearer "+operatorToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, sessionPath, resp.StatusCode, b)
	}
	set := resp.Header.Values("Set-Cookie")
	if len(set) != 1 {
		t.Fatalf("%s %s: Set-Cookie %q, want one", method, sessionPath, set)
	}
	m := cookieLine.FindStringSubmatch(set[0])
	if m == nil {
		t.Fatalf("Set-Cookie %q is not the session cookie", set[0])
	}
	return m[1], m[2]
}

// TestSessionCookieAttributes logs in and out over TLS and over plain
// loopback HTTP: the cookie is HttpOnly, SameSite=Strict and Path=/ on
// both, Secure only under TLS (a browser would drop a Secure cookie set
// over http://), and the logout clears it with the same attributes.
func TestSessionCookieAttributes(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", 10, true)
	certFile, keyFile, usersFile := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"), filepath.Join(dir, "users")
	writeTestFile(t, certFile, certPEM, 0o644)
	writeTestFile(t, keyFile, keyPEM, 0o600)
	writeTestFile(t, usersFile, []byte("otto operator sha256:"+hexDigest(operatorToken)+"\n"), 0o600)
	cfg, err := config.New().AdminListen("127.0.0.1:0").AdminUsersFile(usersFile).
		AdminTLS(certFile, config.Secret{File: keyFile}).
		Frontend("pg").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	tlsBase, _ := serveTLS(t, cfg)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	plainBase := startTestServer(t, newFakeSource())

	for _, tc := range []struct {
		name   string
		client *http.Client
		base   string
		login  string
		logout string
	}{
		{"TLS", tlsClient, tlsBase, "; Path=/; HttpOnly; Secure; SameSite=Strict", "; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"},
		{"plain loopback HTTP", http.DefaultClient, plainBase, "; Path=/; HttpOnly; SameSite=Strict", "; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"},
	} {
		value, attrs := sessionSetCookie(t, tc.client, tc.base, operatorToken)
		if len(value) != 43 || attrs != tc.login {
			t.Errorf("%s: login cookie value of %d characters, attributes %q; want 43 (256 bits) and %q", tc.name, len(value), attrs, tc.login)
		}
		value, attrs = sessionSetCookie(t, tc.client, tc.base, "")
		if value != "" || attrs != tc.logout {
			t.Errorf("%s: logout cookie %q%s, want an empty value and %q", tc.name, value, attrs, tc.logout)
		}
	}
}
