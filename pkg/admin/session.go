package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Browser sessions: the page logs in with a token (POST /api/v1/session)
// and gets a session cookie, HttpOnly (scripts cannot read it) and
// SameSite=Strict (no other site's page sends it), Secure under TLS, plus a
// CSRF token that its scripts send back in X-CSRF-Token on every change.
// The server keeps only the SHA-256 of the cookie. A session ends on
// logout, after sessionIdle without use, after sessionMaxAge in any case,
// and when its user is removed or given a new token.
const (
	sessionCookie = "splicer_session"
	csrfHeader    = "X-CSRF-Token"
	sessionIdle   = 30 * time.Minute
	sessionMaxAge = 12 * time.Hour
	// maxSessions bounds the table; the oldest session goes first.
	maxSessions = 1024
)

type session struct {
	user    string
	digest  Digest // of the token it logged in with
	csrf    string
	created time.Time
	used    time.Time
}

type sessionStore struct {
	mu  sync.Mutex
	m   map[Digest]*session // by SHA-256 of the cookie value
	now func() time.Time
}

func newSessionStore() *sessionStore {
	return &sessionStore{m: make(map[Digest]*session), now: time.Now}
}

// randomString returns 256 random bits, URL-safe.
func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for u and returns the cookie value and the CSRF
// token.
func (st *sessionStore) create(u User) (cookie, csrf string) {
	cookie, csrf = randomString(), randomString()
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	st.expireLocked(now)
	if len(st.m) >= maxSessions {
		var oldest Digest
		var first time.Time
		for k, s := range st.m {
			if first.IsZero() || s.created.Before(first) {
				oldest, first = k, s.created
			}
		}
		delete(st.m, oldest)
	}
	st.m[sha256.Sum256([]byte(cookie))] = &session{user: u.Name, digest: u.Digest, csrf: csrf, created: now, used: now}
	return cookie, csrf
}

func (st *sessionStore) expireLocked(now time.Time) {
	for k, s := range st.m {
		if now.Sub(s.used) > sessionIdle || now.Sub(s.created) > sessionMaxAge {
			delete(st.m, k)
		}
	}
}

// lookup returns the live session of a cookie value and marks it used.
func (st *sessionStore) lookup(cookie string) (session, bool) {
	k := sha256.Sum256([]byte(cookie))
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[k]
	if !ok {
		return session{}, false
	}
	now := st.now()
	if now.Sub(s.used) > sessionIdle || now.Sub(s.created) > sessionMaxAge {
		delete(st.m, k)
		return session{}, false
	}
	s.used = now
	return *s, true
}

// end removes a session.
func (st *sessionStore) end(cookie string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, sha256.Sum256([]byte(cookie)))
}

// revokeStale ends the sessions whose user is gone from users or has
// another token now.
func (st *sessionStore) revokeStale(users *Users) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, s := range st.m {
		u, ok := User{}, false
		if users != nil {
			u, ok = users.Lookup(s.user)
		}
		if !ok || !u.HasToken || u.Digest != s.digest {
			delete(st.m, k)
		}
	}
}

// csrfMatches compares in constant time.
func csrfMatches(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// sessionCookieFor sets (value != "") or clears the session cookie.
func sessionCookieFor(value string, secure bool) *http.Cookie {
	c := &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure,
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}

// Failed logins are limited per source: each source has a bucket of
// failBurst failures that refills at one per failRefill. An empty bucket
// answers 429 before any credential is looked at, so guessing tokens from
// one address runs at failRefill's pace. IPv6 sources are counted per /64,
// which one host usually holds in full.
const (
	failBurst   = 10
	failRefill  = 6 * time.Second
	maxFailKeys = 4096
)

type failureLimiter struct {
	mu     sync.Mutex
	burst  float64
	refill time.Duration
	m      map[string]*failBucket
	now    func() time.Time
}

type failBucket struct {
	tokens float64
	at     time.Time
	// told is set once the source was refused in this lockout, so the
	// audit log gets one record per lockout, not one per attempt.
	told bool
}

func newFailureLimiter() *failureLimiter {
	return &failureLimiter{burst: failBurst, refill: failRefill, m: make(map[string]*failBucket), now: time.Now}
}

// bucketLocked returns key's bucket refilled to now, or nil when it is
// full (and then not stored).
func (l *failureLimiter) bucketLocked(key string) *failBucket {
	b, ok := l.m[key]
	if !ok {
		return nil
	}
	now := l.now()
	b.tokens += float64(now.Sub(b.at)) / float64(l.refill)
	b.at = now
	if b.tokens >= l.burst {
		delete(l.m, key)
		return nil
	}
	return b
}

// blocked reports whether key has no failure left, and whether this is
// the first refusal of the lockout.
func (l *failureLimiter) blocked(key string) (blocked, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(key)
	if b == nil || b.tokens >= 1 {
		return false, false
	}
	first = !b.told
	b.told = true
	return true, first
}

// fail takes one failure from key's bucket.
func (l *failureLimiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(key)
	if b == nil {
		if len(l.m) >= maxFailKeys {
			for k := range l.m { // the map's order is random: a random victim
				delete(l.m, k)
				break
			}
		}
		b = &failBucket{tokens: l.burst, at: l.now()}
		l.m[key] = b
	}
	b.tokens--
	if b.tokens >= 1 {
		b.told = false
	}
}

// retryAfter is how long until key may try again, in whole seconds.
func (l *failureLimiter) retryAfter() int { return int(l.refill/time.Second) + 1 }

// failKey is the limiter's key for a TCP client address: the IP, or the
// /64 of an IPv6 address.
func failKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
