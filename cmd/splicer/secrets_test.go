package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// logField finds the first value of field in the JSON log lines whose
// message is msg.
func logField(log, msg, field string) string {
	for _, line := range strings.Split(log, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["message"] != msg {
			continue
		}
		switch v := rec[field].(type) {
		case string:
			return v
		case []any:
			if len(v) > 0 {
				return fmt.Sprint(v[0])
			}
		}
	}
	return ""
}

// TestNoSecretInOutput runs splicer with known tokens, a known redis
// password, audit key and TLS key, through check, run (at debug level),
// every kind of admin request including failed logins, a SIGHUP reload,
// the CLI and audit verify, then looks for every secret in everything
// splicer wrote: the logs, the answers, the metrics, check's output, the
// audit log. There must be no hit.
func TestNoSecretInOutput(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	users := filepath.Join(dir, "users")
	code, adaTok, errOut := runCLI(ctx, "user", "add", "-file", users, "ada", "admin")
	if code != exitOK {
		t.Fatalf("user add: %d %s", code, errOut)
	}
	_, vicTok, _ := runCLI(ctx, "user", "add", "-file", users, "vic", "viewer")
	adaTok, vicTok = strings.TrimSpace(adaTok), strings.TrimSpace(vicTok)
	const redisPassword = "redis-Pa55-3f9c1d"
	const badToken = "splicer_guessed-7e2b55aa"
	auditKey := hex.EncodeToString([]byte("audit key bytes for the test..."))
	t.Setenv("SPLICER_TEST_AUDIT_KEY", auditKey)
	ca := testutil.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", 2, true)
	certFile, keyFile := file("admin.crt", string(certPEM)), file("admin.key", string(keyPEM))
	keyBody := strings.Split(string(keyPEM), "\n")[1] // a line of the key's base64
	pwFile := file("redis.pw", redisPassword+"\n")
	tokenFile := file("token", adaTok+"\n")
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backAddr := back.Addr().String()
	back.Close() // the -demo backend takes it
	cfgPath := file("splicer.toml", fmt.Sprintf(`
[admin]
listen = "127.0.0.1:0"
users_file = %q
tls_cert = %q
tls_key = { file = %q }
audit_log = %q
audit_key = { env = "SPLICER_TEST_AUDIT_KEY" }

[[frontend]]
name = "cache"
listen = "127.0.0.1:0"
  [frontend.health]
  check = "redis"
  interval = "100ms"
  password_file = %q
  [[frontend.backend]]
  address = %q
`, users, certFile, keyFile, filepath.Join(dir, "audit.log"), pwFile, backAddr))

	var outputs []string
	keep := func(what, s string) { outputs = append(outputs, what+":\n"+s) }
	code, out, errOut := runCLI(ctx, "check", "-c", cfgPath)
	if code != exitOK {
		t.Fatalf("check: %d\n%s%s", code, out, errOut)
	}
	keep("check stdout", out)
	keep("check stderr", errOut)
	if !strings.Contains(errOut, "health.password_file: deprecated") {
		t.Errorf("check did not warn of the deprecated key:\n%s", errOut)
	}

	runCtx, cancel := context.WithCancel(ctx)
	var logs testutil.SyncBuffer
	done := make(chan int, 1)
	sigs := make(chan os.Signal, 1)
	go func() {
		done <- runWith(runCtx, []string{"run", "-c", cfgPath, "-demo", "-log-level", "debug"}, &bytes.Buffer{}, &logs, sigs)
	}()
	var adminAddr string
	testutil.WaitFor(t, 10*time.Second, "the admin port", func() bool {
		adminAddr = logField(logs.String(), "admin port listening", "listen")
		return adminAddr != ""
	})
	base := "https://" + adminAddr
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	call := func(method, path, token, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s %v", resp.StatusCode, b, resp.Header)
	}
	keep("stats", call("GET", "/api/v1/stats", vicTok, ""))
	keep("metrics", call("GET", "/metrics", vicTok, ""))
	keep("connections", call("GET", "/api/v1/connections", vicTok, ""))
	for i := 0; i < 3; i++ {
		keep("bad token", call("GET", "/api/v1/stats", badToken, ""))
		keep("bad login", call("POST", "/api/v1/session", "", `{"token":"`+badToken+`"}`))
	}
	keep("login", call("POST", "/api/v1/session", "", `{"token":"`+adaTok+`"}`))
	keep("whoami", call("GET", "/api/v1/session", adaTok, ""))
	keep("drain", call("POST", "/api/v1/frontends/cache/backends/"+backAddr+"/state", adaTok, `{"state":"drain"}`))
	keep("viewer drain", call("POST", "/api/v1/frontends/cache/backends/"+backAddr+"/state", vicTok, `{"state":"ready"}`))
	keep("checkpoint", call("GET", "/api/v1/audit/checkpoint", adaTok, ""))
	testutil.WaitFor(t, 10*time.Second, "a failed redis probe logged", func() bool {
		return strings.Contains(logs.String(), "redis probe "+backAddr)
	})
	sigs <- syscall.SIGHUP // as main delivers it
	testutil.WaitFor(t, 10*time.Second, "the reload", func() bool {
		return strings.Contains(logs.String(), `"message":"configuration reloaded"`)
	})
	caFile := file("ca.pem", string(ca.PEM))
	code, out, errOut = runCLI(ctx, "stats", "-admin", base, "-token-file", tokenFile, "-cacert", caFile)
	if code != exitOK {
		t.Errorf("splicer stats: %d %s", code, errOut)
	}
	keep("splicer stats", out+errOut)
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("run exited %d", code)
	}
	keep("daemon log", logs.String())
	code, out, errOut = runCLI(ctx, "audit", "verify", "-c", cfgPath)
	if code != exitOK {
		t.Errorf("audit verify: %d %s%s", code, out, errOut)
	}
	keep("audit verify", out+errOut)
	audit, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	keep("audit log", string(audit))
	if n := strings.Count(string(audit), "\n"); n != 10 {
		t.Errorf("%d audit records, want 10 (6 bad tokens, a login, a drain, a refused drain, the reload):\n%s", n, audit)
	}

	secrets := map[string]string{
		"ada's token": adaTok, "vic's token": vicTok, "the guessed token": badToken,
		"the redis password": redisPassword, "the audit key": auditKey, "the TLS key": keyBody,
	}
	all := strings.Join(outputs, "\n")
	for name, s := range secrets {
		if strings.Contains(all, s) {
			for _, o := range outputs {
				if strings.Contains(o, s) {
					t.Errorf("%s appears in %s", name, strings.SplitN(o, ":\n", 2)[0])
				}
			}
		}
	}
	if len(all) < 10000 {
		t.Errorf("only %d bytes of output searched", len(all))
	}
}
