package health

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

// replaceFile swaps path's content by an atomic rename, as an operator
// rotating a secret does.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRedisPasswordReload rotates the password file under a checker: the
// probe keeps the old password until ReloadSecrets, uses the new one from
// the next probe on, and keeps the one in use when the new read fails.
func TestRedisPasswordReload(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "redis.pass")
	replaceFile(t, pwFile, "old\n")
	auth := map[string]string{"new": "+OK", "old": "-WRONGPASS invalid username-password pair or user is disabled."}
	addr := serve(t, fakeRedis(auth, "+PONG"))
	c, err := NewChecker(config.Health{Check: "redis", Password: config.Secret{File: pwFile}})
	if err != nil {
		t.Fatal(err)
	}
	rejected := "redis probe " + addr.String() + `: AUTH reply "-WRONGPASS invalid username-password pair or user is disabled.": password rejected`
	checkResult(t, c, addr, 0, false, rejected)

	replaceFile(t, pwFile, "new\n")
	checkResult(t, c, addr, 0, false, rejected) // read only on demand
	r, ok := c.(SecretReloader)
	if !ok {
		t.Fatal("the redis checker is not a SecretReloader")
	}
	if err := r.ReloadSecrets(); err != nil {
		t.Fatal(err)
	}
	checkResult(t, c, addr, 0, true, "redis probe "+addr.String()+": PONG")

	if err := os.Chmod(pwFile, 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.ReloadSecrets()
	if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "mode 0644") || strings.Contains(err.Error(), "new") {
		t.Errorf("reload of a world-readable file: %v", err)
	}
	checkResult(t, c, addr, 0, true, "redis probe "+addr.String()+": PONG")

	// A checker without a secret reloads as a no-op.
	plain, err := NewChecker(config.Health{Check: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.(SecretReloader).ReloadSecrets(); err != nil {
		t.Errorf("tcp checker reload: %v", err)
	}
}

// TestRealRedisPasswordRotation changes a real redis-server's password the
// way an operator rotates it: the server first, then the secret file, then
// the reload; the next probe passes.
func TestRealRedisPasswordRotation(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "redis.pass")
	replaceFile(t, pwFile, "first-pass\n")
	rs := realdb.StartRedis(t, "--requirepass", "first-pass")
	addr := rs.Addr

	c, err := NewChecker(config.Health{Check: "redis", Password: config.Secret{File: pwFile}})
	if err != nil {
		t.Fatal(err)
	}
	pong := "redis probe " + addr.String() + ": PONG"
	testutil.WaitFor(t, 20*time.Second, "redis up", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		return c.Check(ctx, addr).Msg == pong
	})

	// The server's password changes first: the probe, still on the old
	// one, is refused.
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write(append(resp.Command("AUTH", "first-pass"), resp.Command("CONFIG", "SET", "requirepass", "second-pass")...))
	br := bufio.NewReader(conn)
	for i := 0; i < 2; i++ {
		if line, err := br.ReadString('\n'); err != nil || line != "+OK\r\n" {
			t.Fatalf("AUTH/CONFIG SET reply %q, %v", line, err)
		}
	}
	conn.Close()
	checkResult(t, c, addr, 0, false, "redis probe "+addr.String()+
		`: AUTH reply "-WRONGPASS invalid username-password pair or user is disabled.": password rejected`)

	replaceFile(t, pwFile, "second-pass\n")
	if err := c.(SecretReloader).ReloadSecrets(); err != nil {
		t.Fatal(err)
	}
	checkResult(t, c, addr, 0, true, pong)
}
