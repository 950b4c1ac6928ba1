package admin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

func writeTestFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path+".tmp", mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSClientCertificatesAndRotation serves the admin port over TLS with
// optional client certificates: a certificate whose CN is a user logs in as
// that user, one for an unknown CN is refused, a token still works without
// one. A reload with a new server certificate is used by the next
// handshake, and a key file others can read is refused (the old one stays).
func TestTLSClientCertificatesAndRotation(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", 10, true)
	certFile, keyFile, caFile := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"), filepath.Join(dir, "ca.PEM")
	writeTestFile(t, certFile, certPEM, 0o644)
	writeTestFile(t, keyFile, keyPEM, 0o600)
	writeTestFile(t, caFile, ca.PEM, 0o644)
	usersFile := filepath.Join(dir, "users")
	writeTestFile(t, usersFile, []byte("robot operator -\nada admin sha256:"+hexDigest(adminToken)+"\n"), 0o600)

	cfg, err := config.New().AdminListen("0.0.0.0:0").AdminUsersFile(usersFile).
		AdminTLS(certFile, config.Secret{File: keyFile}).AdminTLSClientCA(caFile, "").
		Frontend("pg").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	base, sec := serveTLS(t, cfg)

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := func(cn string) *http.Client {
		tc := &tls.Config{RootCAs: roots}
		if cn != "" {
			c, k := ca.Issue(t, cn, 20, false)
			pair, err := tls.X509KeyPair(c, k)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	get := func(c *http.Client, token, path string) (int, string, *tls.ConnectionState) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.TLS
	}
	if code, body, _ := get(client("robot"), "", "/api/v1/session"); code != 200 ||
		!strings.HasPrefix(body, `{"user":"robot","role":"operator","via":"cert",`) {
		t.Errorf("client certificate: %d %s", code, body)
	}
	if code, body, _ := get(client("mallory"), "", "/api/v1/stats"); code != 401 ||
		body != `{"error":"no valid credentials: the client certificate's subject CN=\"mallory\" is not a user in admin.users_file"}`+"\n" {
		t.Errorf("unknown certificate: %d %s", code, body)
	}
	code, body, state := get(client(""), adminToken, "/api/v1/session")
	if code != 200 || !strings.Contains(body, `"via":"token"`) {
		t.Errorf("token over TLS: %d %s", code, body)
	}
	if serial := state.PeerCertificates[0].SerialNumber.Int64(); serial != 10 {
		t.Errorf("server certificate serial %d, want 10", serial)
	}

	// Rotation: a new certificate and key, then a reload.
	certPEM, keyPEM = ca.Issue(t, "127.0.0.1", 11, true)
	writeTestFile(t, certFile, certPEM, 0o644)
	writeTestFile(t, keyFile, keyPEM, 0o600)
	if err := sec.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, state := get(client(""), adminToken, "/healthz"); state.PeerCertificates[0].SerialNumber.Int64() != 11 {
		t.Errorf("after the reload the server presents serial %d, want 11", state.PeerCertificates[0].SerialNumber.Int64())
	}
	os.Chmod(keyFile, 0o644)
	if err := sec.Reload(cfg); err == nil || !strings.Contains(err.Error(), "admin.tls_key: file") ||
		strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("reload with a world-readable key: %v", err)
	}
	if _, _, state := get(client(""), adminToken, "/healthz"); state.PeerCertificates[0].SerialNumber.Int64() != 11 {
		t.Error("a failed reload changed the certificate")
	}
}

// serveTLS serves a fake source over TLS with the access cfg names, on a
// loopback port, and returns its base URL and the Security.
func serveTLS(t *testing.T, cfg *config.Config) (string, *Security) {
	t.Helper()
	access, err := LoadAccess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := NewSecurity(cfg, access, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := New(newFakeSource(), nil, zerolog.Nop(), Options{Security: sec})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, sec.TLSConfig())
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	return "https://" + ln.Addr().String(), sec
}

func hexDigest(token string) string {
	d := TokenDigest(token)
	return hex.EncodeToString(d[:])
}

// TestRequireClientCertificate refuses the handshake without a certificate
// when tls_client_auth = "require".
func TestRequireClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", 10, true)
	writeTestFile(t, filepath.Join(dir, "c"), certPEM, 0o644)
	writeTestFile(t, filepath.Join(dir, "k"), keyPEM, 0o600)
	writeTestFile(t, filepath.Join(dir, "ca"), ca.PEM, 0o644)
	writeTestFile(t, filepath.Join(dir, "users"), []byte("robot viewer -\n"), 0o600)
	cfg, err := config.New().AdminListen("127.0.0.1:0").AdminUsersFile(filepath.Join(dir, "users")).
		AdminTLS(filepath.Join(dir, "c"), config.Secret{File: filepath.Join(dir, "k")}).
		AdminTLSClientCA(filepath.Join(dir, "ca"), config.TLSClientRequire).
		Frontend("pg").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serveTLS(t, cfg)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if resp, err := c.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("served without a client certificate: %s", resp.Status)
	}
}
