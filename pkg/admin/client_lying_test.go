package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestClientLyingServer points the client at a server that is not a
// healthy splicer daemon: every wrong answer becomes an error naming the
// request and what was wrong, never a zero value taken for the truth.
func TestClientLyingServer(t *testing.T) {
	// answer is the server's behaviour, changed between requests.
	var answer atomic.Pointer[http.HandlerFunc]
	setAnswer := func(f http.HandlerFunc) { answer.Store(&f) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*answer.Load())(w, r) }))
	defer srv.Close()
	huge := func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"version":"`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for i := 0; i < 32; i++ { // 2MiB, twice the limit below
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		w.Write([]byte(`"}`))
	}
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		want   string // after "admin GET /api/v1/stats: "
	}{
		{"JSON cut short", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"version":"1.2.3","frontends":[`)) },
			"decoding answer: unexpected EOF"},
		{"HTML", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html><body>hello</body></html>")) },
			"decoding answer: invalid character '<' looking for beginning of value"},
		{"a field of the wrong type", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"version":5}`)) },
			"decoding answer: json: cannot unmarshal number into Go struct field Stats.version of type string"},
		{"a proxy's error page", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>502 Bad Gateway</html>"))
		}, "Bad Gateway (HTTP 502)"},
		{"an error with a reason", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"admin port busy"}`))
		}, "admin port busy (HTTP 503)"},
		{"a body shorter than its Content-Length", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte(`{"version":`))
		}, "decoding answer: unexpected EOF"},
		{"a body larger than any answer", huge, "the answer is larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setAnswer(tc.answer)
			c := NewClient(srv.URL)
			c.maxAnswer = 1 << 20
			st, err := c.Stats(context.Background())
			if want := "admin GET /api/v1/stats: " + tc.want; err == nil || err.Error() != want {
				t.Errorf("Stats: %v\nwant: %s", err, want)
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) != strings.Contains(tc.want, "(HTTP ") {
				t.Errorf("error %v: APIError %v", err, apiErr)
			}
			if st.Version != "" {
				t.Errorf("stats taken from a bad answer: %+v", st)
			}
		})
	}

	// A daemon that never answers: the caller's deadline ends the wait.
	stuck := make(chan struct{})
	defer close(stuck)
	setAnswer(func(http.ResponseWriter, *http.Request) { <-stuck })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewClient(srv.URL).Stats(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "admin GET /api/v1/stats: ") {
		t.Errorf("a daemon that never answers: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("gave up after %v, want the 100ms deadline", d)
	}
}

// TestClientTLS reaches an https admin port with the CA given by -cacert,
// and refuses a port whose certificate another CA signed, or a CA file
// that is missing or holds no certificate.
func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := testutil.NewCA(t), testutil.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", 10, true)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(newTestServer(newFakeSource(), Options{}).Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	caFile, otherFile, notPEM := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other.pem"), filepath.Join(dir, "junk.pem")
	os.WriteFile(caFile, ca.PEM, 0o644)
	os.WriteFile(otherFile, other.PEM, 0o644)
	os.WriteFile(notPEM, []byte("-----BEGIN NOTHING-----\n"), 0o644)
	token := tokenFile(t, viewerToken)

	var out strings.Builder
	if err := RunStats(context.Background(), []string{"-admin", srv.URL, "-cacert", caFile, "-token-file", token, "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"version": "1.2.3"`) {
		t.Errorf("stats over TLS:\n%s", out.String())
	}
	for _, tc := range []struct{ ca, want string }{
		{otherFile, fmt.Sprintf(`admin GET /api/v1/stats: Get "%s/api/v1/stats": tls: failed to verify certificate: x509: certificate signed by unknown authority`, srv.URL)},
		{"", fmt.Sprintf(`admin GET /api/v1/stats: Get "%s/api/v1/stats": tls: failed to verify certificate: x509: certificate signed by unknown authority`, srv.URL)},
		{filepath.Join(dir, "gone.pem"), "admin client: CA file: open " + filepath.Join(dir, "gone.pem") + ": no such file or directory"},
		{notPEM, "admin client: CA file: " + notPEM + " holds no PEM certificate"},
	} {
		args := []string{"-admin", srv.URL, "-token-file", token}
		if tc.ca != "" {
			args = append(args, "-cacert", tc.ca)
		}
		// Both test CAs have one name: Go may add why the other did not do.
		if err := RunStats(context.Background(), args, &out); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("-cacert %q: %v\nwant: %s", tc.ca, err, tc.want)
		}
	}
}

// TestClientAddresses spells the admin address each way the CLI takes it.
func TestClientAddresses(t *testing.T) {
	sock := serveUnix(t, newTestServer(newFakeSource(), Options{}))
	base := startTestServer(t, newFakeSource())
	for _, tc := range []struct{ addr, base string }{
		{"", "http://" + DefaultAddr},
		{"127.0.0.1:9191", "http://127.0.0.1:9191"},
		{"https://admin.example:9443/", "https://admin.example:9443"},
		{"unix:" + sock, "http://splicer"},
		{sock, "http://splicer"},
		{strings.TrimPrefix(base, "http://"), base},
	} {
		c, err := NewClientWith(tc.addr, ClientOptions{Token: viewerToken})
		if err != nil || c.base != tc.base {
			t.Errorf("NewClientWith(%q): base %q, %v; want %q", tc.addr, c.base, err, tc.base)
			continue
		}
		if tc.base == "http://splicer" || tc.base == base {
			if st, err := c.Stats(context.Background()); err != nil || st.Version != "1.2.3" {
				t.Errorf("stats from %q: %v", tc.addr, err)
			}
		}
	}
	_, err := NewClient("http://[::1").Stats(context.Background())
	if want := `admin GET /api/v1/stats: parse "http://[::1/api/v1/stats": missing ']' in host`; err == nil || err.Error() != want {
		t.Errorf("an address that is not a URL: %v\nwant: %s", err, want)
	}
}

// TestCLIClientRefusals runs each command that calls the daemon with what
// an operator can get wrong before any request (flags, arguments, the
// token file) and with a daemon that is not there.
func TestCLIClientRefusals(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-token")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	refused := "http://" + testutil.RefusedAddr(t, "tcp").String()
	token := tokenFile(t, adminToken)
	commands := map[string]func(context.Context, []string, io.Writer) error{
		"stats": RunStats, "backend": RunBackend, "reload": RunReload, "upgrade": RunUpgrade, "conns": RunConns,
	}
	ready := map[string][]string{
		"stats": nil, "backend": {"drain", "pg", "a"}, "reload": nil, "upgrade": nil, "conns": nil,
	}
	for name, f := range commands {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			if err := f(context.Background(), append([]string{"-frob"}, ready[name]...), &out); !errors.Is(err, ErrUsage) {
				t.Errorf("an unknown flag: %v", err)
			}
			if name != "backend" && name != "conns" {
				if err := f(context.Background(), []string{"extra"}, &out); !errors.Is(err, ErrUsage) {
					t.Errorf("an argument: %v", err)
				}
			}
			err := f(context.Background(), append([]string{"-admin", refused, "-token-file", empty}, ready[name]...), &out)
			if want := "token file " + empty + " is empty"; err == nil || err.Error() != want {
				t.Errorf("an empty token file: %v\nwant: %s", err, want)
			}
			err = f(context.Background(), append([]string{"-admin", refused, "-token-file", token}, ready[name]...), &out)
			if err == nil || !strings.HasSuffix(err.Error(), "connect: connection refused") || !strings.HasPrefix(err.Error(), "admin ") {
				t.Errorf("no daemon: %v", err)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q", out.String())
			}
		})
	}
	var out strings.Builder
	if err := RunBackend(context.Background(), []string{"-admin", refused, "weight", "pg", "a"}, &out); !errors.Is(err, ErrUsage) {
		t.Errorf("weight without N: %v", err)
	}
	if err := RunConns(context.Background(), []string{"-admin", refused, "-token-file", empty, "kill", "3"}, &out); err == nil ||
		err.Error() != "token file "+empty+" is empty" {
		t.Errorf("conns kill with an empty token file: %v", err)
	}
}
