package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/testutil"
)

const statePath = "/api/v1/frontends/pg/backends/a/state"

// auditKey is the test audit key.
var auditKey = []byte("0123456789abcdef0123456789abcdef")

// newAuditedSecurity is newTestSecurity with an audit log in a temporary
// directory, whose path it returns.
func newAuditedSecurity(t *testing.T, opts AuditOptions) (*Security, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAudit(path, auditKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	s := newTestSecurity()
	s.audit = a
	return s, path
}

// readAudit returns the records of an audit file.
func readAudit(t *testing.T, path string) []AuditRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []AuditRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rec, _, _, err := parseAuditLine(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, rec)
	}
	return out
}

// TestBrowserRefusals sends what a hostile page can make a browser send:
// each is refused with its exact status and reason, audited, and changes
// nothing. The last cases show the same checks let the page's own requests
// and non-browser clients through.
func TestBrowserRefusals(t *testing.T) {
	tests := []struct {
		name, method, target, host, body string
		headers                          []string // name, value pairs; Content-Type replaces do's
		wantStatus                       int
		wantBody                         string
	}{
		{"simple POST from another site, state in the query", "POST", statePath + "?state=maint", "127.0.0.1:9090", "",
			[]string{"Content-Type", "", "Origin", "http://evil.example"}, 403,
			`{"error":"cross-origin request refused (Origin: http://evil.example)"}`},
		{"simple POST without Origin", "POST", statePath + "?state=maint", "127.0.0.1:9090", "",
			[]string{"Content-Type", ""}, 415,
			`{"error":"a change must be sent as Content-Type: application/json"}`},
		{"form POST", "POST", statePath, "127.0.0.1:9090", "state=drain",
			[]string{"Content-Type", "application/x-www-form-urlencoded"}, 415,
			`{"error":"a change must be sent as Content-Type: application/json"}`},
		{"text/plain fetch", "POST", statePath, "127.0.0.1:9090", `{"state":"drain"}`,
			[]string{"Content-Type", "text/plain"}, 415,
			`{"error":"a change must be sent as Content-Type: application/json"}`},
		{"another port of the same host", "POST", statePath, "127.0.0.1:9090", `{"state":"drain"}`,
			[]string{"Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:8000"}, 403,
			`{"error":"cross-site request refused (Sec-Fetch-Site: same-site)"}`},
		{"cross-site fetch", "DELETE", "/api/v1/connections/3", "127.0.0.1:9090", "",
			[]string{"Sec-Fetch-Site", "cross-site"}, 403,
			`{"error":"cross-site request refused (Sec-Fetch-Site: cross-site)"}`},
		{"sandboxed page", "PUT", "/api/v1/frontends/pg/backends/a/weight", "127.0.0.1:9090", `{"weight":1}`,
			[]string{"Origin", "null"}, 403, `{"error":"cross-origin request refused (Origin: null)"}`},
		{"https origin for an http port", "POST", statePath, "127.0.0.1:9090", `{"state":"drain"}`,
			[]string{"Origin", "https://127.0.0.1:9090"}, 403,
			`{"error":"cross-origin request refused (Origin: https://127.0.0.1:9090)"}`},
		{"DNS rebinding: a read", "GET", "/api/v1/stats", "evil.example:9090", "", nil, 421,
			`{"error":"host \"evil.example:9090\" is not a name of this admin port (DNS rebinding defence); if it is, add it to admin.hosts"}`},
		{"DNS rebinding: a same-origin change", "POST", statePath, "evil.example:9090", `{"state":"drain"}`,
			[]string{"Origin", "http://evil.example:9090", "Sec-Fetch-Site", "same-origin"}, 421,
			`{"error":"host \"evil.example:9090\" is not a name of this admin port (DNS rebinding defence); if it is, add it to admin.hosts"}`},
		{"DNS rebinding: the page", "GET", "/", "evil.example", "", nil, 421,
			`{"error":"host \"evil.example\" is not a name of this admin port (DNS rebinding defence); if it is, add it to admin.hosts"}`},
	}
	src := newFakeSource()
	sec, auditPath := newAuditedSecurity(t, AuditOptions{})
	sec.access.Store(&Access{users: testUsers(), hosts: []string{"lb1.example.net"}})
	h := newTestServer(src, Options{Security: sec}).Handler()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := doHost(t, h, tc.host, adminToken, tc.method, tc.target, tc.body, tc.headers...)
			if got.status != tc.wantStatus || got.body != tc.wantBody+"\n" {
				t.Errorf("got %d %s, want %d %s", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
		})
	}
	if st := src.Stats().Frontends[0].Backends[0]; st.State != "ready" || st.Weight != 100 {
		t.Errorf("refused requests changed backend a: %s weight %d", st.State, st.Weight)
	}
	if _, total, _ := src.Connections("", 0, 10); total != 4 {
		t.Errorf("refused requests closed a connection: %d left", total)
	}
	recs := readAudit(t, auditPath)
	if len(recs) != len(tests) {
		t.Fatalf("%d audit records for %d refusals", len(recs), len(tests))
	}
	for i, rec := range recs {
		want := fmt.Sprintf("denied: %d ", tests[i].wantStatus)
		if !strings.HasPrefix(rec.Result, want) || rec.Source != "127.0.0.1:40000" {
			t.Errorf("record %d: %+v, want result %q...", i, rec, want)
		}
	}

	allowed := []struct {
		name, method, target, host, body string
		headers                          []string
		wantStatus                       int
	}{
		{"the page's own change", "POST", statePath, "127.0.0.1:9090", `{"state":"drain"}`,
			[]string{"Origin", "http://127.0.0.1:9090", "Sec-Fetch-Site", "same-origin"}, 200},
		{"JSON with a charset", "POST", statePath, "[::1]:9090", `{"state":"ready"}`,
			[]string{"Content-Type", "application/json; charset=utf-8"}, 200},
		{"curl", "PUT", "/api/v1/frontends/pg/backends/a/weight", "localhost:9090", `{"weight":5}`, nil, 200},
		{"a name from admin.hosts", "GET", "/api/v1/stats", "LB1.example.net:9090", "", nil, 200},
		{"typed into the address bar", "GET", "/", "127.0.0.1:9090", "", []string{"Sec-Fetch-Site", "none"}, 200},
		{"a link from another site to the page", "GET", "/", "127.0.0.1:9090", "", []string{"Sec-Fetch-Site", "cross-site"}, 200},
	}
	for _, tc := range allowed {
		if got := doHost(t, h, tc.host, adminToken, tc.method, tc.target, tc.body, tc.headers...); got.status != tc.wantStatus {
			t.Errorf("%s: got %d %s, want %d", tc.name, got.status, got.body, tc.wantStatus)
		}
	}
}

// doHost is doAs with a Host header.
func doHost(t *testing.T, h http.Handler, host, token, method, target, body string, headers ...string) response {
	t.Helper()
	return doAs(t, h, token, method, target, body, append([]string{"Host", host}, headers...)...)
}

// TestSecurityHeaders checks that no answer can be framed or sniffed, and
// that the page may run only its own inline script.
func TestSecurityHeaders(t *testing.T) {
	h := newTestServer(newFakeSource(), Options{}).Handler()
	for _, target := range []string{"/", "/api/v1/stats", "/healthz", "/nope", "/api/v1/frontends/pg/backends/a/state"} {
		got := do(t, h, http.MethodGet, target, "")
		csp := got.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || got.header.Get("X-Frame-Options") != "DENY" ||
			got.header.Get("X-Content-Type-Options") != "nosniff" || got.header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s (%d): headers %v", target, got.status, got.header)
		}
	}
	page := do(t, h, http.MethodGet, "/", "").header.Get("Content-Security-Policy")
	if !strings.Contains(page, "script-src 'sha256-") || strings.Contains(page, "unsafe-inline") ||
		!strings.Contains(page, "connect-src 'self'") || !strings.Contains(page, "form-action 'none'") {
		t.Errorf("page CSP %q", page)
	}
}

// TestLoginRateLimit fails logins from one address until it is refused
// before its token is even looked at; another address is not affected, and
// the lockout is audited once, not per attempt.
func TestLoginRateLimit(t *testing.T) {
	sec, auditPath := newAuditedSecurity(t, AuditOptions{})
	sec.failures = newFailureLimiter()
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()
	var statuses []int
	for i := 0; i < failBurst+3; i++ {
		statuses = append(statuses, loginFrom(t, h, "192.0.2.7:1000", "wrong").status)
	}
	for i, st := range statuses {
		want := http.StatusUnauthorized
		if i >= failBurst {
			want = http.StatusTooManyRequests
		}
		if st != want {
			t.Fatalf("attempt %d: %d, want %d (all: %v)", i+1, st, want, statuses)
		}
	}
	if got := loginFrom(t, h, "192.0.2.7:1001", adminToken); got.status != http.StatusTooManyRequests ||
		got.header.Get("Retry-After") != "7" {
		t.Errorf("right token from the locked-out address: %d Retry-After %q", got.status, got.header.Get("Retry-After"))
	}
	if got := loginFrom(t, h, "192.0.2.8:1000", adminToken); got.status != http.StatusOK {
		t.Errorf("another address: %d %s", got.status, got.body)
	}
	// A bad bearer token is a failure too, audited the same way.
	if got := doRemote(t, h, "192.0.2.9:1000", "wrong", "GET", "/api/v1/stats", ""); got.status != http.StatusUnauthorized {
		t.Errorf("bad bearer token: %d", got.status)
	}
	var denied, limited int
	for _, rec := range readAudit(t, auditPath) {
		switch {
		case strings.HasPrefix(rec.Result, "denied: 401"):
			denied++
		case strings.HasPrefix(rec.Result, "denied: 429"):
			limited++
		}
	}
	if denied != failBurst+1 || limited != 1 {
		t.Errorf("audit: %d failed logins and %d lockouts, want %d and 1", denied, limited, failBurst+1)
	}
}

func loginFrom(t *testing.T, h http.Handler, remote, token string) response {
	t.Helper()
	return doRemote(t, h, remote, "", "POST", "/api/v1/session", `{"token":"`+token+`"}`)
}

// doRemote is doAs from another client address.
func doRemote(t *testing.T, h http.Handler, remote, token, method, target, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:9090"+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.RemoteAddr = remote
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost || method == http.MethodPut {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

// TestPageLoginAndDrainInChromium logs into the real page with a token,
// drains a backend with the confirmation the page asks for, cancels a maint,
// and checks the cookie's flags and the audit record.
func TestPageLoginAndDrainInChromium(t *testing.T) {
	skipWithoutChromium(t)
	src := newFakeSource()
	sec, auditPath := newAuditedSecurity(t, AuditOptions{})
	base := serveTCP(t, newTestServer(src, Options{Security: sec}))
	tab := startChromium(t)
	if _, err := tab.call("Page.navigate", map[string]any{"url": base + "/"}); err != nil {
		t.Fatal(err)
	}
	tab.waitEval(t, `document.getElementById("login").hidden`, "false")
	tab.waitEval(t, `document.getElementById("app").hidden`, "true")

	// A wrong token is refused on the form.
	tab.waitEval(t, `(document.getElementById("login").hidden ? "login form not shown yet" : (document.getElementById("token").value = "nope", document.getElementById("login-button").click(), "sent"))`, "sent")
	tab.waitEval(t, `document.getElementById("login-error").textContent`, "login failed: the token matches no user")

	tab.waitEval(t, `(document.getElementById("login").hidden ? "login form not shown yet" : (document.getElementById("token").value = "`+operatorToken+`", document.getElementById("login-button").click(), "sent"))`, "sent")
	const rowsJS = `JSON.stringify([...document.querySelectorAll("tr[data-backend]")].map(r => [
		r.closest("table").dataset.frontend, r.dataset.backend, r.className,
		r.querySelector("td.health").textContent.split(" ")[0],
		getComputedStyle(r.querySelector("td.health")).backgroundColor]))`
	tab.waitEval(t, rowsJS, `[["pg","a","up ready","UP","rgb(200, 239, 200)"],`+
		`["pg","[::1]:5433","down drain","DOWN","rgb(245, 194, 194)"]]`)
	tab.waitEval(t, `document.getElementById("who").textContent`, "otto (operator) log out")
	tab.waitEval(t, `document.getElementById("token").value`, "")

	raw, err := tab.call("Network.getCookies", map[string]any{"urls": []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var cookies struct {
		Cookies []struct {
			Name     string `json:"name"`
			HTTPOnly bool   `json:"httpOnly"`
			SameSite string `json:"sameSite"`
			Path     string `json:"path"`
		} `json:"cookies"`
	}
	if err := json.Unmarshal(raw, &cookies); err != nil {
		t.Fatal(err)
	}
	if len(cookies.Cookies) != 1 || cookies.Cookies[0].Name != sessionCookie || !cookies.Cookies[0].HTTPOnly ||
		cookies.Cookies[0].SameSite != "Strict" || cookies.Cookies[0].Path != "/" {
		t.Errorf("cookies %+v", cookies.Cookies)
	}
	tab.waitEval(t, `document.cookie`, "") // HttpOnly: the script cannot read it

	// drain asks first; nothing changes until the confirmation.
	tab.waitEval(t, `(document.querySelector('tr[data-backend="a"] button[data-state="drain"]').click(), "clicked")`, "clicked")
	tab.waitEval(t, `document.getElementById("confirm").hidden ? "hidden" : document.getElementById("confirm-text").textContent`, "drain pg/a? ")
	if st := src.Stats().Frontends[0].Backends[0].State; st != "ready" {
		t.Fatalf("drain applied before the confirmation: %s", st)
	}
	tab.waitEval(t, `(document.getElementById("confirm-yes").click(), "confirmed")`, "confirmed")
	testutil.WaitFor(t, browserWait, "backend a drained in the Source", func() bool {
		return src.Stats().Frontends[0].Backends[0].State == "drain"
	})
	tab.waitEval(t, `document.querySelector('tr[data-backend="a"] td.state').textContent`, "drain")
	tab.waitEval(t, `document.getElementById("error").textContent`, "")

	// maint, cancelled, changes nothing.
	tab.waitEval(t, `(document.querySelector('tr[data-backend="[::1]:5433"] button[data-state="maint"]').click(), "clicked")`, "clicked")
	tab.waitEval(t, `document.getElementById("confirm-text").textContent`, "maint pg/[::1]:5433? ")
	tab.waitEval(t, `(document.getElementById("confirm-no").click(), document.getElementById("confirm").hidden)`, "true")

	// kill asks first too.
	tab.waitEval(t, `(document.querySelector('details.conns[data-frontend="pg"]').open = true, "opened")`, "opened")
	tab.waitEval(t, `(document.querySelector('button[data-kill="8"]').click(), document.getElementById("confirm-text").textContent)`,
		"kill connection 8 from 127.0.0.1:40003 (both sides get a reset)? ")
	tab.waitEval(t, `(document.getElementById("confirm-yes").click(), "confirmed")`, "confirmed")
	testutil.WaitFor(t, browserWait, "connection 8 closed", func() bool { _, n, _ := src.Connections("", 0, 10); return n == 3 })
	if st := src.Stats().Frontends[0].Backends[1].State; st != "drain" {
		t.Errorf("cancelled maint applied: %s", st)
	}

	tab.waitEval(t, `(document.getElementById("logout").click(), "out")`, "out")
	tab.waitEval(t, `document.getElementById("login-error").textContent`, "logged out")

	var got []string
	for _, r := range readAudit(t, auditPath) {
		got = append(got, strings.Join([]string{r.User, r.Role, r.Transport, r.Action, r.Target, r.Previous, r.New, r.Result}, "|"))
	}
	want := []string{
		"||tcp|session.login|session|||denied: 401 the token matches no user",
		"otto|operator|tcp|session.login|session||logged in|ok",
		"otto|operator|tcp|backend.state|pg/a|ready|drain|ok",
		"otto|operator|tcp|connection.kill|connection 8 (pg)|client 127.0.0.1:40003 backend a|closed|ok",
		"otto|operator|tcp|session.logout|session||logged out|ok",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// evilPage tries what a page on another origin can: a no-cors POST (a
// "simple" request, sent without asking), a JSON POST (which needs a CORS
// preflight), a form posted into a hidden frame, and framing the admin
// page. It writes what it saw into window.results and sets the title to
// "done".
const evilPage = `<!DOCTYPE html><html><head><title>evil</title></head><body>
<iframe id="framed" src="ADMIN/"></iframe>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" target="sink" enctype="text/plain" action="ADMIN/api/v1/frontends/pg/backends/a/state">
<input name='{"state":"drain","x":"' value='"}'></form>
<script>
window.results = {};
const url = "ADMIN/api/v1/frontends/pg/backends/a/state";
(async () => {
  try {
    const r = await fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
      headers: {"Content-Type": "text/plain"}, body: '{"state":"drain"}'});
    window.results.nocors = r.type;
  } catch (e) { window.results.nocors = "error"; }
  try {
    const r = await fetch(url, {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json"}, body: '{"state":"maint"}'});
    window.results.cors = "status " + r.status;
  } catch (e) { window.results.cors = "blocked"; }
  document.getElementById("sink").addEventListener("load", () => {
    window.results.form = "posted";
    document.title = "done";
  });
  document.getElementById("f").submit();
})();
</script></body></html>`

// TestCrossOriginPageInChromium logs a browser into the admin page, then
// has it load hostile pages from another port of the same host (same site,
// another origin: the session cookie goes along) and from another site: no
// attempt drains the backend, the framed admin page does not render, and
// the admin port saw and refused the requests that reached it. Last, a
// DNS-rebound name pointing at the admin port is refused.
func TestCrossOriginPageInChromium(t *testing.T) {
	skipWithoutChromium(t)
	src := newFakeSource()
	sec, auditPath := newAuditedSecurity(t, AuditOptions{})
	base := serveTCP(t, newTestServer(src, Options{Security: sec}))
	evil := serveEvil(t, strings.ReplaceAll(evilPage, "ADMIN", base))
	_, adminPort, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	tab := startChromium(t, "--host-resolver-rules=MAP rebound.test 127.0.0.1")

	if _, err := tab.call("Page.navigate", map[string]any{"url": base + "/"}); err != nil {
		t.Fatal(err)
	}
	tab.waitEval(t, `(document.getElementById("login").hidden ? "login form not shown yet" : (document.getElementById("token").value = "`+adminToken+`", document.getElementById("login-button").click(), "sent"))`, "sent")
	tab.waitEval(t, `document.getElementById("who").textContent`, "ada (admin) log out")

	for i, origin := range []string{evil, strings.Replace(evil, "127.0.0.1", "localhost", 1)} {
		if _, err := tab.call("Page.navigate", map[string]any{"url": origin + "/"}); err != nil {
			t.Fatal(err)
		}
		tab.waitEval(t, `document.title`, "done")
		tab.waitEval(t, `JSON.stringify(window.results)`, `{"nocors":"opaque","cors":"blocked","form":"posted"}`)
		if i > 0 {
			// A frame of another site runs in another process, outside
			// this tab's frame tree; TestSecurityHeaders covers it.
			continue
		}
		// A frame blocked by frame-ancestors shows Chromium's error page.
		raw, err := tab.call("Page.getFrameTree", map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), `"url":"chrome-error://chromewebdata/"`) {
			t.Errorf("%s: the framed admin page was not blocked: %s", origin, raw)
		}
	}
	if st := src.Stats().Frontends[0].Backends[0].State; st != "ready" {
		t.Fatalf("a cross-origin page changed backend a to %s", st)
	}
	var refused []string
	for _, r := range readAudit(t, auditPath) {
		if r.Action == "backend.state" {
			refused = append(refused, r.User+"|"+r.Result)
		}
	}
	want := []string{
		"|denied: 403 cross-site request refused (Sec-Fetch-Site: same-site)", // no-cors fetch
		"|denied: 403 cross-site request refused (Sec-Fetch-Site: same-site)", // form
		"|denied: 403 cross-site request refused (Sec-Fetch-Site: cross-site)",
		"|denied: 403 cross-site request refused (Sec-Fetch-Site: cross-site)",
	}
	if strings.Join(refused, "\n") != strings.Join(want, "\n") {
		t.Errorf("audited refusals:\n%s\nwant:\n%s", strings.Join(refused, "\n"), strings.Join(want, "\n"))
	}

	// DNS rebinding: the attacker's name now resolves to the admin port,
	// which makes its page same-origin with it; the admin port refuses the
	// name.
	if _, err := tab.call("Page.navigate", map[string]any{"url": "http://rebound.test:" + adminPort + "/api/v1/stats"}); err != nil {
		t.Fatal(err)
	}
	tab.waitEval(t, `document.body.innerText.trim()`, `{"error":"host \"rebound.test:`+adminPort+
		`\" is not a name of this admin port (DNS rebinding defence); if it is, add it to admin.hosts"}`)
}

// serveEvil serves page at / on another loopback port and returns its base.
func serveEvil(t *testing.T, page string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
