package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// loadTest runs clients through front until stop is called, each one a
// connection that must bring the demo backend's greeting and echo a line;
// served counts the successes so far, and stop returns them with the
// failures. It is bounded: at most 50000 connections and 30 s.
func loadTest(t *testing.T, front string) (served func() int64, stop func() (ok int64, failures []string)) {
	t.Helper()
	var ok atomic.Int64
	var mu sync.Mutex
	var failures []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second)
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; i < 50000/4 && time.Now().Before(deadline); i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := echoOnce(front); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	return ok.Load, func() (int64, []string) {
		close(done)
		wg.Wait()
		return ok.Load(), failures
	}
}

func echoOnce(front string) error {
	c, err := net.DialTimeout("tcp", front, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "hello from demo backend") {
		return fmt.Errorf("greeting %q: %v", line, err)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		return fmt.Errorf("echo %q: %v", line, err)
	}
	return nil
}

// statusWith returns the status of GET /api/v1/stats with token.
func statusWith(base, token string) int {
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// replaceFile writes a file beside path and renames it over path.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// usersLine returns a users file line for a fresh token, and the token.
func usersLine(t *testing.T, name, role string) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "u")
	r, err := admin.ParseRole(role)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.AddUser(path, name, r, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), tok
}

// TestSecretRotationUnderLoad rotates the admin users file while clients
// stream through the data plane, twice: once by renaming a new file over
// the old, once by swapping a Kubernetes-style ..data symlink. After each
// SIGHUP the new token is accepted and the old one refused within a
// second; no client fails.
func TestSecretRotationUnderLoad(t *testing.T) {
	for _, kind := range []string{"rename", "..data symlink swap"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			oldLine, oldTok := usersLine(t, "ops", "operator")
			newLine, newTok := usersLine(t, "ops", "operator")
			usersPath := filepath.Join(dir, "users")
			swap := func() { replaceFile(t, usersPath, []byte(newLine)) }
			if kind != "rename" {
				// Kubernetes mounts a secret as dir/KEY -> ..data/KEY,
				// ..data -> ..TIMESTAMP, and updates it by writing a new
				// ..TIMESTAMP and renaming a new ..data link over the old.
				for _, gen := range []struct{ dir, line string }{{"..2026_01", oldLine}, {"..2026_02", newLine}} {
					os.Mkdir(filepath.Join(dir, gen.dir), 0o755)
					replaceFile(t, filepath.Join(dir, gen.dir, "users"), []byte(gen.line))
				}
				os.Symlink("..2026_01", filepath.Join(dir, "..data"))
				os.Symlink("..data/users", usersPath)
				swap = func() {
					tmp := filepath.Join(dir, "..data_tmp")
					if err := os.Symlink("..2026_02", tmp); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				replaceFile(t, usersPath, []byte(oldLine))
			}
			back := startDemo(t)
			build := func() (*config.Config, error) {
				return config.New().AdminListen("127.0.0.1:0").AdminUsersFile(usersPath).
					Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").Build()
			}
			cfg, err := build()
			if err != nil {
				t.Fatal(err)
			}
			// SIGHUP as cmd/splicer delivers it: the config is read again,
			// here built again, and the secrets with it.
			sigs := make(chan os.Signal, 1)
			d := runWith(t, cfg, Options{Signals: sigs, Load: build})
			front := frontAddr(t, d)
			base := "http://" + d.adminLn.Addr().String()
			if got := statusWith(base, oldTok); got != 200 {
				t.Fatalf("old token before the rotation: %d", got)
			}
			served, stop := loadTest(t, front)
			testutil.WaitFor(t, 10*time.Second, "100 clients served before the rotation", func() bool { return served() >= 100 })

			swap()
			if got := statusWith(base, newTok); got != http.StatusUnauthorized {
				t.Errorf("new token before SIGHUP: %d", got)
			}
			start := time.Now()
			sigs <- syscall.SIGHUP
			testutil.WaitFor(t, 10*time.Second, "new token accepted and old refused", func() bool {
				return statusWith(base, newTok) == 200 && statusWith(base, oldTok) == http.StatusUnauthorized
			})
			// SIGHUP is delivered to the serve loop, which reloads at once
			// (no polling of the file anywhere), so the bound holds from
			// the signal itself, the HTTP round trips of the check included.
			took := time.Since(start)
			if took >= time.Second {
				t.Errorf("%s: new token accepted and old refused %v after SIGHUP, want under 1 s", kind, took)
			}
			after := served()
			testutil.WaitFor(t, 10*time.Second, "100 more clients served after it", func() bool { return served() >= after+100 })
			ok, failures := stop()
			if len(failures) != 0 {
				t.Errorf("%d clients served, %d failed during the rotation: %v", ok, len(failures), failures)
			}
			t.Logf("%s: rotation effective after %v, %d clients served, 0 failed", kind, took.Round(time.Millisecond), ok)
		})
	}
}

// fakeRedisServer answers PING after AUTH with whatever password
// current() returns at the time, as a redis-server whose requirepass an
// operator changes.
func fakeRedisServer(t *testing.T, current func() string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				authed := false
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					reply := "-ERR unknown command"
					switch {
					case len(args) == 2 && args[0] == "AUTH" && args[1] == current():
						authed, reply = true, "+OK"
					case len(args) == 2 && args[0] == "AUTH":
						reply = "-WRONGPASS invalid username-password pair or user is disabled."
					case len(args) == 1 && args[0] == "PING" && authed:
						reply = "+PONG"
					case len(args) == 1 && args[0] == "PING":
						reply = "-NOAUTH Authentication required."
					}
					io.WriteString(c, reply+"\r\n")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	var n int
	if _, err := fmt.Fscanf(r, "*%d\r\n", &n); err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		var l int
		if _, err := fmt.Fscanf(r, "$%d\r\n", &l); err != nil {
			return nil, err
		}
		b := make([]byte, l+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:l])
	}
	return args, nil
}

// TestRedisPasswordRotationOnReload changes the password a redis backend
// wants, which takes it down, then the secret file and reloads: the next
// probe authenticates and the backend comes back, while the data plane
// keeps its listener.
func TestRedisPasswordRotationOnReload(t *testing.T) {
	var password atomic.Value
	password.Store("first")
	redisAddr := fakeRedisServer(t, func() string { return password.Load().(string) })
	pwFile := filepath.Join(t.TempDir(), "redis.pw")
	replaceFile(t, pwFile, []byte("first\n"))
	cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").Backend(redisAddr, 1).
		HealthCheck("redis").HealthPassword(config.Secret{File: pwFile}).
		HealthInterval(50 * time.Millisecond).HealthTimeout(time.Second).HealthRise(1).HealthFall(1).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{Load: func() (*config.Config, error) { return cfg, nil }})
	front := frontAddr(t, d)
	b := d.srv.Backends("t")[0]
	sched := d.checks.scheduler("t")
	lastMsg := func() string { st, _ := sched.State(b); return st.Last.Msg }
	testutil.WaitFor(t, 5*time.Second, "redis probe passing", func() bool { return lastMsg() == "redis probe "+redisAddr+": PONG" })

	password.Store("second")
	testutil.WaitFor(t, 5*time.Second, "backend down on the old password", func() bool { return !b.Healthy() })
	replaceFile(t, pwFile, []byte("second\n"))
	if out := d.Reload(context.Background()); !out.OK {
		t.Fatalf("reload: %v", out.Problems)
	}
	testutil.WaitFor(t, 5*time.Second, "backend up on the new password", func() bool { return b.Healthy() })
	if got := frontAddr(t, d); got != front {
		t.Errorf("listener moved from %s to %s", front, got)
	}

	// A password file others can read is refused; the one in use stays.
	os.Chmod(pwFile, 0o644)
	out := d.Reload(context.Background())
	text := fmt.Sprint(out.Problems)
	if out.OK || !strings.Contains(text, `frontend "t": health.password: file`) || strings.Contains(text, "second") {
		t.Errorf("reload with a world-readable password file: ok %v, %s", out.OK, text)
	}
	if !b.Healthy() {
		t.Error("a failed reload took the backend down")
	}
}

// TestAdminDisabledHasNoSecurity runs without an admin port: nothing is
// loaded, and a reload still works (and re-reads health secrets).
func TestAdminDisabledHasNoSecurity(t *testing.T) {
	back := startDemo(t)
	cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runWith(t, cfg, Options{Load: func() (*config.Config, error) { return cfg, nil }})
	if d.security != nil {
		t.Error("security built for a disabled admin port")
	}
	if out := d.Reload(context.Background()); !out.OK {
		t.Errorf("reload: %v", out.Problems)
	}
}

// TestStartFailsClosed refuses to start on a users file that is missing or
// that other users can read, and on an audit key it cannot read: the admin
// port never comes up open.
func TestStartFailsClosed(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "users-open")
	os.WriteFile(open, nil, 0o644)
	os.Chmod(open, 0o644)
	short := filepath.Join(dir, "short.key")
	replaceFile(t, short, []byte("too short\n"))
	tests := []struct {
		name  string
		build func(*config.Builder) *config.Builder
		want  string
	}{
		{"missing users file", func(b *config.Builder) *config.Builder { return b.AdminUsersFile(filepath.Join(dir, "nope")) },
			"admin.users_file: file \"" + dir + "/nope\": no such file or directory"},
		{"world-readable users file", func(b *config.Builder) *config.Builder { return b.AdminUsersFile(open) },
			"admin.users_file: file \"" + open + "\": mode 0644 lets users other than its owner"},
		{"audit key unset", func(b *config.Builder) *config.Builder {
			return b.AdminAuditLog(filepath.Join(dir, "audit.log"), config.Secret{Env: "SPLICER_TEST_UNSET_KEY"})
		}, "admin.audit_key: env SPLICER_TEST_UNSET_KEY: variable unset"},
		{"audit key too short", func(b *config.Builder) *config.Builder {
			return b.AdminAuditLog(filepath.Join(dir, "audit.log"), config.Secret{File: short})
		}, "admin.audit_key: file \"" + short + "\" holds 9 bytes; use at least 16 random bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.build(config.New().AdminListen("127.0.0.1:0")).
				Frontend("t").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(cfg, zerolog.Nop(), Options{})
			if err == nil {
				d.srv.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "too short") {
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
}
