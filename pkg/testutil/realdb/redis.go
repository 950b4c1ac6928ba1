package realdb

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/resp"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// Redis is a redis-server (or redis-sentinel) started by a test.
type Redis struct {
	*Process
	Addr netip.AddrPort
	Dir  string
	// Password is sent with AUTH by Do; "" sends none.
	Password string
}

// RedisBin returns the redis-server binary, or skips the test.
func RedisBin(t testing.TB) string {
	t.Helper()
	testutil.SkipShort(t, "Redis")
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("install redis-server (Debian package redis-server) to run this test")
	}
	return bin
}

// StartRedis starts a redis-server on a free loopback port without
// persistence; extra are more command-line options ("--requirepass", "x").
// It returns once the server answers.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin := RedisBin(t)
	dir := t.TempDir()
	r := &Redis{Addr: FreePort(t), Dir: dir}
	for i, a := range extra {
		if a == "--requirepass" && i+1 < len(extra) {
			r.Password = extra[i+1]
		}
	}
	r.Process = &Process{t: t, Name: bin, Args: append([]string{
		"--port", strconv.Itoa(int(r.Addr.Port())), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no",
	}, extra...)}
	r.Start()
	r.WaitReady(t)
	return r
}

// WaitReady waits until the server answers PING.
func (r *Redis) WaitReady(t testing.TB) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "redis at "+r.Addr.String(), func() bool {
		v, err := r.do("PING")
		return err == nil && v.Kind == resp.SimpleString
	})
}

// Do runs one command and returns its reply, failing the test when the
// connection fails (an error reply is returned as a Value).
func (r *Redis) Do(t testing.TB, args ...string) resp.Value {
	t.Helper()
	v, err := r.do(args...)
	if err != nil {
		t.Fatalf("redis %s %v: %v", r.Addr, args, err)
	}
	return v
}

func (r *Redis) do(args ...string) (resp.Value, error) {
	c, err := net.DialTimeout("tcp", r.Addr.String(), 5*time.Second)
	if err != nil {
		return resp.Value{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rd := resp.NewReader(c)
	if r.Password != "" {
		if _, err := c.Write(resp.Command("AUTH", r.Password)); err != nil {
			return resp.Value{}, err
		}
		if v, err := rd.Read(); err != nil || v.Kind == resp.Error {
			return resp.Value{}, fmt.Errorf("AUTH: %v %v", v, err)
		}
	}
	if _, err := c.Write(resp.Command(args...)); err != nil {
		return resp.Value{}, err
	}
	return rd.Read()
}

// StartSentinel starts a redis-sentinel (Debian package redis-sentinel)
// monitoring master as master set name with quorum 1, a 1 s down-after and
// a 5 s failover timeout; it returns once the Sentinel knows the master.
func StartSentinel(t testing.TB, master *Redis, name string) *Redis {
	t.Helper()
	testutil.SkipShort(t, "redis-sentinel")
	bin := lookFirst("redis-sentinel", "/usr/bin/redis-sentinel")
	if bin == "" {
		t.Skip("install redis-sentinel (Debian package redis-sentinel) to run this test")
	}
	dir := t.TempDir()
	s := &Redis{Addr: FreePort(t), Dir: dir}
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %d 1\n"+
		"sentinel down-after-milliseconds %[3]s 1000\nsentinel failover-timeout %[3]s 5000\nsentinel parallel-syncs %[3]s 1\n",
		s.Addr.Port(), dir, name, master.Addr.Addr(), master.Addr.Port())
	if master.Password != "" {
		text += fmt.Sprintf("sentinel auth-pass %s %s\n", name, master.Password)
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Process = &Process{t: t, Name: bin, Args: []string{conf}}
	s.Start()
	testutil.WaitFor(t, 20*time.Second, "the Sentinel to know "+name, func() bool {
		v, err := s.do("SENTINEL", "get-master-addr-by-name", name)
		return err == nil && v.Kind == resp.Array
	})
	return s
}
