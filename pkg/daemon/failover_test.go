package daemon

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

// listenAddr is the first bound address of frontend name.
func listenAddr(t *testing.T, d *Daemon, name string) netip.AddrPort {
	t.Helper()
	var addr netip.AddrPort
	testutil.WaitFor(t, 5*time.Second, "frontend "+name+" bound", func() bool {
		if a := d.srv.Addrs(name); len(a) > 0 {
			addr = a[0]
		}
		return addr.IsValid()
	})
	return addr
}

// healthy lists which of frontend name's backends are up, as "+" and "-".
func healthy(d *Daemon, name string) string {
	var b strings.Builder
	for _, be := range d.srv.Backends(name) {
		if be.Healthy() {
			b.WriteByte('+')
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// lastChange is when the health checks last flipped b.
func lastChange(t *testing.T, d *Daemon, frontend string, b *backend.Backend) time.Time {
	t.Helper()
	st, ok := d.checks.scheduler(frontend).State(b)
	if !ok {
		t.Fatalf("no health state for %s", b.Name())
	}
	return st.LastChange
}

// TestPostgresFailover runs a PostgreSQL primary and a streaming replica
// behind a read-write (role = "primary") and a read-only (role =
// "replica") frontend. Every connection of 100 reaches the right server.
// Then, with pgbench writing through the read-write frontend, the replica
// is promoted while the old primary still runs: the frontend moves to the
// new primary within fall × interval + 1 s, the old primary is cut off the
// moment the new one is taken in, so not one transaction commits there
// after that, the clients cut off reconnect and succeed, and the old
// primary, restarted on its old timeline, is kept out.
func TestPostgresFailover(t *testing.T) {
	pgbench := filepath.Join(realdb.PostgresBin(t), "pgbench")
	if _, err := os.Stat(pgbench); err != nil {
		t.Skip("install pgbench (Debian package postgresql) to run this test")
	}
	// Its timings (a switch within fall x interval + 1s) need the CPU:
	// not beside a flood test in another package.
	testutil.Exclusive(t, "cpu", 5*time.Minute)
	oldPrimary := realdb.StartPostgres(t)
	replica := oldPrimary.StartReplica(t)
	const (
		interval = 500 * time.Millisecond
		fall     = 3
	)
	frontend := func(fb *config.FrontendBuilder, role string) *config.FrontendBuilder {
		return fb.Listen("127.0.0.1:0").
			Backend(oldPrimary.Addr.String(), 1).Backend(replica.Addr.String(), 1).
			HealthCheck(config.CheckPostgres).HealthUser("splicer").HealthDatabase("postgres").HealthRole(role).
			HealthInterval(interval).HealthTimeout(400 * time.Millisecond).HealthRise(2).HealthFall(fall)
	}
	rwb := frontend(config.New().AdminListen("").Frontend("rw"), config.RolePrimary)
	cfg, err := frontend(rwb.Frontend("ro"), config.RoleReplica).Build()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Frontends[0].OnDown != config.OnDownClose {
		t.Fatalf("on_down of a role = primary frontend is %q, want close by default", cfg.Frontends[0].OnDown)
	}
	d := runDaemon(t, cfg)
	rw, ro := listenAddr(t, d, "rw"), listenAddr(t, d, "ro")
	testutil.WaitFor(t, 10*time.Second, "roles settled", func() bool { return healthy(d, "rw") == "+-" && healthy(d, "ro") == "-+" })

	for i := range 100 {
		if got, err := realdb.PgQuery(rw, "SELECT pg_is_in_recovery()"); err != nil || got != "f" {
			t.Fatalf("connection %d through rw: pg_is_in_recovery() = %q, %v", i, got, err)
		}
		if got, err := realdb.PgQuery(ro, "SELECT pg_is_in_recovery()"); err != nil || got != "t" {
			t.Fatalf("connection %d through ro: pg_is_in_recovery() = %q, %v", i, got, err)
		}
	}

	// Each transaction records when it ran (at) and when its session
	// reached the server (session, the backend's start: pgbench -C opens
	// one session per transaction).
	oldPrimary.SQL(t, "CREATE TABLE ledger (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), "+
		"session timestamptz NOT NULL, port int NOT NULL DEFAULT inet_server_port(), "+
		"run int NOT NULL DEFAULT current_setting('application_name')::int)")
	script := filepath.Join(t.TempDir(), "ledger.sql")
	if err := os.WriteFile(script, []byte("INSERT INTO ledger (session) SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid();\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bench := func(run int, args ...string) *exec.Cmd {
		cmd := exec.Command(pgbench, append([]string{"-n", "-f", script, "-h", rw.Addr().String(),
			"-p", strconv.Itoa(int(rw.Port())), "-U", "splicer"}, append(args, "postgres")...)...)
		cmd.Env = append(os.Environ(), "PGAPPNAME="+strconv.Itoa(run), "PGCONNECT_TIMEOUT=5")
		return cmd
	}
	// Run 1: four pgbench clients, each its own process with a new
	// connection per transaction, through the failover. A client whose
	// pgbench fails (a session cut, a connect refused) reconnects: its
	// supervisor starts it again, as an application's pool would.
	const clients = 4
	type client struct {
		mu       sync.Mutex
		cmd      *exec.Cmd
		failures int
		out      bytes.Buffer
	}
	var (
		cs   [clients]*client
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for i := range cs {
		c := &client{}
		cs[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 200; attempt++ {
				cmd := bench(1000+i, "-C", "-c", "1", "-T", "60")
				c.mu.Lock()
				select {
				case <-stop:
					c.mu.Unlock()
					return
				default:
				}
				c.cmd = cmd
				cmd.Stdout, cmd.Stderr = &c.out, &c.out
				err := cmd.Start()
				c.mu.Unlock()
				if err == nil {
					err = cmd.Wait()
				}
				select {
				case <-stop:
					return
				default:
				}
				if err != nil {
					c.mu.Lock()
					c.failures++
					c.mu.Unlock()
				}
			}
		}()
	}
	stopClients := func() {
		close(stop)
		for _, c := range cs {
			c.mu.Lock()
			if c.cmd != nil && c.cmd.Process != nil {
				c.cmd.Process.Signal(syscall.SIGINT)
			}
			c.mu.Unlock()
		}
		wg.Wait()
	}
	defer func() {
		select {
		case <-stop:
		default:
			stopClients()
		}
	}()
	testutil.WaitFor(t, 30*time.Second, "pgbench writing", func() bool {
		n, _ := strconv.Atoi(oldPrimary.SQL(t, "SELECT count(*) FROM ledger"))
		return n >= 20
	})

	// Sample when the old primary's last connection is gone once it is
	// out, every millisecond from the promotion on.
	bs := d.srv.Backends("rw")
	closedAt := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if !bs[0].Healthy() && bs[0].Active() == 0 {
				closedAt <- time.Now()
				return
			}
		}
		close(closedAt)
	}()
	promoted := time.Now()
	replica.SQL(t, "SELECT pg_promote()")
	newPort := strconv.Itoa(int(replica.Addr.Port()))
	var switched time.Time
	testutil.WaitFor(t, 10*time.Second, "rw on the new primary", func() bool {
		port, err := realdb.PgQuery(rw, "SELECT inet_server_port()")
		switched = time.Now()
		return err == nil && port == newPort
	})
	took := lastChange(t, d, "rw", bs[1]).Sub(promoted)
	cut := lastChange(t, d, "rw", bs[0])
	t.Logf("promotion to switch decided: %v; to a client served by the new primary: %v; bound fall × interval + 1s = %v",
		took, switched.Sub(promoted), fall*interval+time.Second)
	if switched.Sub(promoted) > fall*interval+time.Second {
		t.Errorf("rw moved %v after the promotion, want at most %v", switched.Sub(promoted), fall*interval+time.Second)
	}
	if bs[0].Healthy() || cut.Before(promoted) {
		t.Fatalf("old primary still in rw (healthy %v, last change %v)", bs[0].Healthy(), cut)
	}
	closed, ok := <-closedAt
	if !ok {
		t.Fatal("the old primary's connections were not closed")
	}

	// Every client, those whose session was cut and reconnected among
	// them, goes on committing, on the new primary.
	since := func(when time.Time) string {
		return "to_timestamp(" + strconv.FormatFloat(float64(when.UnixNano())/1e9, 'f', 6, 64) + ")"
	}
	perClient := func(i int) int {
		n, _ := strconv.Atoi(replica.SQL(t, "SELECT count(*) FROM ledger WHERE run = "+strconv.Itoa(1000+i)+
			" AND port = "+newPort+" AND at > "+since(switched)))
		return n
	}
	testutil.WaitFor(t, 30*time.Second, "every pgbench client committing on the new primary", func() bool {
		for i := range cs {
			if perClient(i) < 3 {
				return false
			}
		}
		return true
	})

	// The old primary is still running. Give stragglers time to show,
	// then look at what it committed. The balancer's part: no session
	// reaches it once the switch is decided (the old primary is out of
	// the frontend: no new connection goes there), and nothing commits
	// there past the moment a statement sent before the cut could take.
	// What it had received by then it may still commit: no proxy can take
	// back bytes delivered.
	time.Sleep(time.Second)
	stopClients()
	at := func(q string) time.Time {
		secs, err := strconv.ParseFloat(oldPrimary.SQL(t, "SELECT coalesce(extract(epoch FROM "+q+"), 0) FROM ledger"), 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.Unix(0, int64(secs*1e9))
	}
	lastAt, lastSession := at("max(at)"), at("max(session)")
	lost, _ := strconv.Atoi(oldPrimary.SQL(t, "SELECT count(*) FROM ledger WHERE at > "+since(promoted)))
	late, _ := strconv.Atoi(oldPrimary.SQL(t, "SELECT count(*) FROM ledger WHERE at > "+since(cut)))
	t.Logf("old primary: cut %v after the promotion, its sessions closed %v after the cut; %d transactions committed there "+
		"between the promotion and the cut; after the cut %d committed (already received), the last %v after it; last session began %v after the cut",
		cut.Sub(promoted), closed.Sub(cut), lost, late, lastAt.Sub(cut), lastSession.Sub(cut))
	// A session routed just before the cut is forked by the server a
	// moment later, and a statement received before the cut commits a
	// moment later: pgbench commits every few milliseconds, so routing
	// there for longer would show well past this bound.
	const processing = 250 * time.Millisecond
	if lastSession.After(cut.Add(processing)) {
		t.Errorf("a session reached the old primary %v after the switch was decided", lastSession.Sub(cut))
	}
	if lastAt.After(cut.Add(processing)) {
		t.Errorf("a transaction committed on the old primary %v after the switch was decided", lastAt.Sub(cut))
	}
	oldPrimary.Stop(syscall.SIGINT)
	for i, c := range cs {
		t.Logf("pgbench client %d: %d sessions failed and reconnected; %d transactions on the new primary after the switch; last output:\n%s",
			i, c.failures, perClient(i), tail(c.out.String(), 4))
	}

	// Run 2: the clients connect again and every transaction succeeds.
	out2, err := bench(2, "-c", "4", "-t", "25").CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench after the failover: %v\n%s", err, out2)
	}
	if n := replica.SQL(t, "SELECT count(*) FROM ledger WHERE run = 2 AND port = "+newPort); n != "100" {
		t.Fatalf("run 2 committed %s transactions on the new primary, want 100", n)
	}

	// The old primary comes back on its old timeline: still a primary in
	// its own eyes, stale to the frontend.
	oldPrimary.Restart(t)
	testutil.WaitFor(t, 10*time.Second, "the stale primary refused", func() bool {
		st, _ := d.checks.scheduler("rw").State(bs[0])
		return strings.Contains(st.Last.Msg, "stale: a primary on timeline 2 was seen, this one is on 1")
	})
	time.Sleep(fall * interval)
	if bs[0].Healthy() || healthy(d, "rw") != "-+" {
		t.Fatalf("rw backends %s after the old primary came back", healthy(d, "rw"))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// redisPort asks the Redis server behind addr for its port.
func redisPort(addr netip.AddrPort) (string, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(resp.Command("CONFIG", "GET", "port")); err != nil {
		return "", err
	}
	v, err := resp.NewReader(c).Read()
	if err != nil {
		return "", err
	}
	if len(v.Array) != 2 {
		return "", errors.New(v.String())
	}
	return v.Array[1].Str, nil
}

// TestSentinelFailover runs a Redis master, a replica and a real
// redis-sentinel; a frontend takes its backend from Sentinel. A failover
// Sentinel decides moves new clients to the new master within a second of
// +switch-master, and the connection left on the old master is closed.
func TestSentinelFailover(t *testing.T) {
	master := realdb.StartRedis(t)
	replica := realdb.StartRedis(t, "--replicaof", master.Addr.Addr().String(), strconv.Itoa(int(master.Addr.Port())))
	testutil.WaitFor(t, 20*time.Second, "the replica in sync", func() bool {
		v := replica.Do(t, "ROLE")
		return len(v.Array) == 5 && v.Array[3].Str == "connected"
	})
	sentinel := realdb.StartSentinel(t, master, "cache")
	// Sentinel promotes only a replica it has heard from: its INFO must
	// report the link to the master up.
	testutil.WaitFor(t, 30*time.Second, "the Sentinel to see a promotable replica", func() bool {
		reps := sentinel.Do(t, "SENTINEL", "replicas", "cache").Array
		if len(reps) != 1 {
			return false
		}
		f := map[string]string{}
		for i := 0; i+1 < len(reps[0].Array); i += 2 {
			f[reps[0].Array[i].Str] = reps[0].Array[i+1].Str
		}
		return f["flags"] == "slave" && f["master-link-status"] == "ok" && f["role-reported"] == "slave"
	})

	cfg, err := config.New().AdminListen("").Frontend("cache").Listen("127.0.0.1:0").
		DiscoverSentinel("cache", []netip.AddrPort{sentinel.Addr}, config.DiscoveryOptions{}).
		HealthCheck(config.CheckRedis).HealthRole(config.RolePrimary).
		HealthInterval(200 * time.Millisecond).HealthTimeout(200 * time.Millisecond).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := listenAddr(t, d, "cache")
	masterPort, replicaPort := strconv.Itoa(int(master.Addr.Port())), strconv.Itoa(int(replica.Addr.Port()))
	if got, err := redisPort(front); err != nil || got != masterPort {
		t.Fatalf("through the frontend: port %q, %v; want the master's %s", got, err, masterPort)
	}
	held, err := net.Dial("tcp", front.String())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	// Watch Sentinel's events as a client would.
	sub, err := net.Dial("tcp", sentinel.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	events := resp.NewReader(sub)
	sub.Write(resp.Command("SUBSCRIBE", "+switch-master"))
	if _, err := events.Read(); err != nil {
		t.Fatal(err)
	}
	if v := sentinel.Do(t, "SENTINEL", "FAILOVER", "cache"); v.Kind != resp.SimpleString {
		t.Fatalf("SENTINEL FAILOVER: %v", v)
	}
	sub.SetReadDeadline(time.Now().Add(30 * time.Second))
	ev, err := events.Read()
	if err != nil {
		t.Fatalf("no +switch-master: %v", err)
	}
	switchAt := time.Now()
	t.Logf("event %v", ev)
	var moved time.Time
	testutil.WaitFor(t, 5*time.Second, "the frontend on the new master", func() bool {
		got, err := redisPort(front)
		moved = time.Now()
		return err == nil && got == replicaPort
	})
	t.Logf("frontend moved %v after +switch-master", moved.Sub(switchAt))
	if moved.Sub(switchAt) > time.Second {
		t.Errorf("frontend moved %v after +switch-master, want within 1s", moved.Sub(switchAt))
	}
	held.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the connection to the old master is still open: %v", err)
	}
}
