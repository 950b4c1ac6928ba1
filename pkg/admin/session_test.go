package admin

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// fakeClock is a settable clock for the session store and the login
// limiter.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// login logs in with token and returns the session cookie and the CSRF
// token.
func login(t *testing.T, h http.Handler, token string) (cookie, csrf string) {
	t.Helper()
	got := doAs(t, h, "", "POST", "/api/v1/session", `{"token":"`+token+`"}`)
	if got.status != http.StatusOK {
		t.Fatalf("login: %d %s", got.status, got.body)
	}
	for _, c := range (&http.Response{Header: got.header}).Cookies() {
		if c.Name == sessionCookie {
			cookie = c.Value
		}
	}
	_, rest, _ := strings.Cut(got.body, `"csrf":"`)
	csrf, _, _ = strings.Cut(rest, `"`)
	if cookie == "" || csrf == "" {
		t.Fatalf("login answered %s without a cookie and a CSRF token", got.body)
	}
	return cookie, csrf
}

// withSession sends a request with the session cookie, and the CSRF
// token when csrf is not "".
func withSession(t *testing.T, h http.Handler, cookie, csrf, method, target, body string) response {
	t.Helper()
	headers := []string{"Cookie", sessionCookie + "=" + cookie}
	if csrf != "" {
		headers = append(headers, csrfHeader, csrf)
	}
	return doAs(t, h, "", method, target, body, headers...)
}

const sessionEnded = `{"error":"no valid credentials: the session has ended; log in again"}` + "\n"

// TestSessionLifetime keeps a page's session alive by using it, and ends
// it after 30 minutes idle, after 12 hours in any case, and when the
// user's token is rotated or the user removed; a change made with the
// cookie needs the CSRF token.
func TestSessionLifetime(t *testing.T) {
	clock := newFakeClock()
	sec := newTestSecurity()
	sec.sessions.now = clock.Now
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()

	cookie, csrf := login(t, h, operatorToken)
	if got := withSession(t, h, cookie, "", "POST", statePath, `{"state":"drain"}`); got.status != http.StatusForbidden ||
		got.body != `{"error":"missing or wrong X-CSRF-Token header for a change made with the session cookie"}`+"\n" {
		t.Errorf("a change without the CSRF token: %d %s", got.status, got.body)
	}
	if got := withSession(t, h, cookie, "not-"+csrf, "POST", statePath, `{"state":"drain"}`); got.status != http.StatusForbidden {
		t.Errorf("a change with a wrong CSRF token: %d %s", got.status, got.body)
	}
	if got := withSession(t, h, cookie, csrf, "POST", statePath, `{"state":"drain"}`); got.status != http.StatusOK {
		t.Errorf("a change with the CSRF token: %d %s", got.status, got.body)
	}
	// Used every 29 minutes, it lives; 12 hours after the login it ends
	// however recently it was used.
	for i := 0; i < 24; i++ {
		clock.advance(29 * time.Minute)
		if got := withSession(t, h, cookie, "", "GET", "/api/v1/stats", ""); got.status != http.StatusOK {
			t.Fatalf("used after %v: %d %s", time.Duration(i+1)*29*time.Minute, got.status, got.body)
		}
	}
	clock.advance(29 * time.Minute) // 12h05m after the login
	if got := withSession(t, h, cookie, "", "GET", "/api/v1/stats", ""); got.status != http.StatusUnauthorized || got.body != sessionEnded {
		t.Errorf("a session 12h05m old: %d %s", got.status, got.body)
	}

	idle, _ := login(t, h, operatorToken)
	clock.advance(30*time.Minute + time.Second)
	if got := withSession(t, h, idle, "", "GET", "/api/v1/stats", ""); got.status != http.StatusUnauthorized || got.body != sessionEnded {
		t.Errorf("a session idle for 30m01s: %d %s", got.status, got.body)
	}
	// Sessions that ended are swept from the store at the next login.
	sec.sessions.m[[32]byte{1}] = &session{user: "otto", created: clock.Now().Add(-13 * time.Hour), used: clock.Now()}
	login(t, h, viewerToken)
	if n := len(sec.sessions.m); n != 1 {
		t.Errorf("%d sessions kept, want only the live one", n)
	}

	// A reload that rotates otto's token and removes sam ends their
	// sessions; vera's, unchanged, goes on.
	vera, _ := login(t, h, viewerToken)
	otto, _ := login(t, h, operatorToken)
	sam, _ := login(t, h, scopedToken)
	users := testUsers()
	users.list = users.list[:2]
	users.list[1].Digest = TokenDigest("splicer_rotated")
	if err := sec.Apply(&config.Config{}, &Access{users: users}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cookie string
		want         int
	}{{"vera", vera, http.StatusOK}, {"otto", otto, http.StatusUnauthorized}, {"sam", sam, http.StatusUnauthorized}} {
		if got := withSession(t, h, tc.cookie, "", "GET", "/api/v1/stats", ""); got.status != tc.want {
			t.Errorf("%s after the reload: %d %s", tc.name, got.status, got.body)
		}
	}
	// No users file any more: no session survives.
	if err := sec.Apply(&config.Config{}, &Access{}); err != nil {
		t.Fatal(err)
	}
	if n := len(sec.sessions.m); n != 0 {
		t.Errorf("%d sessions kept without users", n)
	}
}

// TestSessionTableBounded opens more sessions than the store keeps: the
// oldest goes first, the others stay.
func TestSessionTableBounded(t *testing.T) {
	clock := newFakeClock()
	st := newSessionStore()
	st.now = clock.Now
	u := testUsers().list[0]
	var cookies []string
	for i := 0; i <= maxSessions; i++ {
		cookie, _ := st.create(u)
		cookies = append(cookies, cookie)
		clock.advance(time.Millisecond)
	}
	if len(st.m) != maxSessions {
		t.Errorf("%d sessions, want %d", len(st.m), maxSessions)
	}
	if _, ok := st.lookup(cookies[0]); ok {
		t.Error("the oldest session survived")
	}
	for _, i := range []int{1, maxSessions / 2, maxSessions} {
		if _, ok := st.lookup(cookies[i]); !ok {
			t.Errorf("session %d was dropped", i)
		}
	}
}

// TestLoginAuditDown logs in and out while the audit log cannot be
// written: refused with 503, and no session is left to use.
func TestLoginAuditDown(t *testing.T) {
	sec, _ := newAuditedSecurity(t, AuditOptions{})
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()
	cookie, csrf := login(t, h, adminToken)
	sec.audit.Close()
	got := doAs(t, h, "", "POST", "/api/v1/session", `{"token":"`+adminToken+`"}`)
	if got.status != http.StatusServiceUnavailable || got.body != auditRefused || got.header.Get("Set-Cookie") != "" {
		t.Errorf("login with the audit log down: %d %s (Set-Cookie %q)", got.status, got.body, got.header.Get("Set-Cookie"))
	}
	if n := len(sec.sessions.m); n != 1 {
		t.Errorf("%d sessions, want only the one from before", n)
	}
	got = withSession(t, h, cookie, csrf, "DELETE", "/api/v1/session", "")
	if got.status != http.StatusServiceUnavailable || got.body != auditRefused {
		t.Errorf("logout with the audit log down: %d %s", got.status, got.body)
	}
	if _, ok := sec.sessions.lookup(cookie); !ok {
		t.Error("an unaudited logout ended the session")
	}
}

// TestAuthorizationHeaderRefused sends Authorization headers that are not
// a bearer token: refused, saying what is expected.
func TestAuthorizationHeaderRefused(t *testing.T) {
	h := newTestServer(newFakeSource(), Options{}).Handler()
	for _, v := range []string{"Basic YWRhOnNlY3JldA==", "Bearer", "Bearer ", adminToken} {
		got := doAs(t, h, "", "GET", "/api/v1/stats", "", "Authorization", v)
		if got.status != http.StatusUnauthorized ||
			got.body != `{"error":"no valid credentials: the Authorization header must be \"Bearer TOKEN\""}`+"\n" {
			t.Errorf("Authorization: %s: %d %s", v, got.status, got.body)
		}
	}
	if got := doAs(t, h, "", "GET", "/api/v1/stats", "", "Authorization", "bearer  "+adminToken+" "); got.status != http.StatusOK {
		t.Errorf("a lower-case scheme and spaces around the token: %d %s", got.status, got.body)
	}
}

// TestFailureLimiterBounds checks the login limiter's bookkeeping: a
// source's bucket refills and is forgotten once full, IPv6 sources count
// per /64, and the table of sources is bounded.
func TestFailureLimiterBounds(t *testing.T) {
	clock := newFakeClock()
	l := newFailureLimiter()
	l.now = clock.Now
	for i := 0; i < failBurst; i++ {
		l.fail("192.0.2.1")
	}
	if blocked, first := l.blocked("192.0.2.1"); !blocked || !first {
		t.Errorf("after %d failures: blocked %v, first %v", failBurst, blocked, first)
	}
	if blocked, first := l.blocked("192.0.2.1"); !blocked || first {
		t.Errorf("asked again: blocked %v, first %v (one audit record per lockout)", blocked, first)
	}
	clock.advance(failRefill)
	if blocked, _ := l.blocked("192.0.2.1"); blocked {
		t.Errorf("still blocked after %v", failRefill)
	}
	clock.advance(failBurst * failRefill)
	if blocked, _ := l.blocked("192.0.2.1"); blocked || len(l.m) != 0 {
		t.Errorf("a full bucket: blocked %v, %d sources kept", blocked, len(l.m))
	}

	for _, tc := range []struct{ remote, key string }{
		{"192.0.2.1:4000", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:4000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:80", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.1]:4000", "192.0.2.1"},
		{"@", "@"},
	} {
		if got := failKey(tc.remote); got != tc.key {
			t.Errorf("failKey(%q) = %q, want %q", tc.remote, got, tc.key)
		}
	}

	for i := 0; i < maxFailKeys+10; i++ {
		l.fail(fmt.Sprintf("10.%d.%d.1", i>>8, i&0xff))
	}
	if len(l.m) != maxFailKeys {
		t.Errorf("%d sources kept, want %d", len(l.m), maxFailKeys)
	}
}
