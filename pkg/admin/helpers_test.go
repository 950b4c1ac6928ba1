package admin

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// The test users: one per role, and an operator scoped to the fake
// source's "cache" frontend (so "pg" is another frontend to it).
const (
	viewerToken   = "splicer_test-viewer-token"
	operatorToken = "splicer_test-operator-token"
	scopedToken   = "splicer_test-scoped-token"
	adminToken    = "splicer_test-admin-token"
)

func testUsers() *Users {
	u := func(name, role, token string) User {
		r, err := ParseRole(role)
		if err != nil {
			panic(err)
		}
		return User{Name: name, Role: r, Digest: TokenDigest(token), HasToken: true}
	}
	return &Users{list: []User{
		u("vera", "viewer", viewerToken),
		u("otto", "operator", operatorToken),
		u("sam", "operator:cache", scopedToken),
		u("ada", "admin", adminToken),
	}}
}

// newTestSecurity serves the test users, without an audit log, with the
// failed-login limiter out of the way (TestLoginRateLimit tests it).
func newTestSecurity() *Security {
	s := ReadOnly(zerolog.Nop())
	s.access.Store(&Access{users: testUsers()})
	s.failures.burst = 1 << 30
	return s
}

func newTestServer(src Source, opts Options) *Server {
	if opts.Security == nil {
		opts.Security = newTestSecurity()
	}
	return New(src, nil, zerolog.Nop(), opts)
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request as the admin user, with the JSON content type a
// change needs, straight to h.
func do(t testing.TB, h http.Handler, method, target, body string) response {
	t.Helper()
	return doAs(t, h, adminToken, method, target, body)
}

// doAs sends a request with token ("" for none) straight to h; headers are
// name, value pairs added last.
func doAs(t testing.TB, h http.Handler, token, method, target, body string, headers ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr, req.Host = "127.0.0.1:40000", "127.0.0.1:9090"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost || method == http.MethodPut {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

// serveTCP serves s on a fresh loopback port until the test ends and
// returns its base URL.
func serveTCP(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return "http://" + ln.Addr().String()
}

// serveUnix serves s on an admin socket in a temporary directory until the
// test ends and returns the socket's path.
func serveUnix(t *testing.T, s *Server) string {
	t.Helper()
	// A socket path is short: t.TempDir's names are too long for one.
	dir, err := os.MkdirTemp("", "splicer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "admin.sock")
	ln, err := ListenUnix(path, 0o660, "")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return path
}

// tokenFile writes token to a 0600 file for -token-file.
func tokenFile(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// unixClient is an HTTP client that reaches the admin socket at path,
// whatever the URL's host.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

// startTestServer serves src with the test users on loopback.
func startTestServer(t *testing.T, src Source) string {
	t.Helper()
	return serveTCP(t, newTestServer(src, Options{}))
}
