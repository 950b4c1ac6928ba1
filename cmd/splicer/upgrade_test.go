package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

// gone reports whether pid has exited (a zombie counts: it serves nothing).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// startedPIDs lists the pids of the "splicer started" lines in order.
func startedPIDs(p *proc) []int {
	var out []int
	for _, rec := range p.records() {
		if rec["message"] == "splicer started" {
			out = append(out, int(rec["pid"].(float64)))
		}
	}
	return out
}

// TestUpgradeUnderLoad upgrades twice, without the hand-over of
// connections (upgrade.handoff = false), under 150 new connections a second
// and 50 checksummed streams, once with `splicer upgrade` and once with
// SIGUSR2: no connect is refused, nothing is reset or corrupted, each old
// process keeps serving its connections and exits as soon as the last one
// ends, and the newest serves on.
func TestUpgradeUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("an 8-second load test")
	}
	dir := t.TempDir()
	e := []*echoServer{startEcho(t), startEcho(t)}
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	// Drain-only upgrades: the old processes keep their connections.
	writeFile(t, path, baseConfig(t, dir, adminAddr, 30*time.Second)+"[upgrade]\nhandoff = false\n\n"+
		frontendConfig("main", front, "", be{"e0", e[0].addr, 1}, be{"e1", e[1].addr, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	l := startLoad(t, front, 150, 50, 2000)
	time.Sleep(1500 * time.Millisecond)

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"upgrade", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut); code != exitOK {
		t.Fatalf("splicer upgrade: exit %d: %s%s", code, out.String(), errOut.String())
	}
	p.waitLog(10*time.Second, "splicer started", 2)
	pids := startedPIDs(p)
	if len(pids) != 2 || !strings.Contains(out.String(), fmt.Sprintf("pid %d now serves; pid %d drains", pids[1], pids[0])) {
		t.Fatalf("upgrade printed %q; started pids %v", out.String(), pids)
	}
	time.Sleep(1500 * time.Millisecond)
	syscall.Kill(pids[1], syscall.SIGUSR2)
	p.waitLog(30*time.Second, "splicer started", 3)
	pids = startedPIDs(p)
	time.Sleep(1500 * time.Millisecond)
	// The streams all opened on the first process: it drains them. The
	// second served short connections alone, and went once they ended.
	if gone(pids[0]) {
		t.Error("the first process exited while its streams were open")
	}

	l.check(t, 50)
	// Their last connections ended: the old processes go at once, not at
	// shutdown_timeout (30s).
	testutil.WaitFor(t, 10*time.Second, "the old processes gone", func() bool { return gone(pids[0]) && gone(pids[1]) })
	if code, _ := p.exited(5 * time.Second); code != 0 {
		t.Errorf("the first process exited %d", code)
	}
	echoOnce(t, front)
	if gone(pids[2]) {
		t.Fatal("the newest process is gone")
	}
	// The echo's connection ends in the daemon a moment after the client
	// has read its answer.
	var st stats.Stats
	testutil.WaitFor(t, 5*time.Second, "the last connection closed in the newest process", func() bool {
		st = p.stats()
		return st.Connections == 0
	})
	if len(st.Frontends) != 1 {
		t.Errorf("the newest process's stats: %+v", st)
	}
}

// TestUpgradeFailureKeepsServing tries two upgrades that cannot work: a
// binary that exits at once, then a real one that finds an invalid config.
// Each time the old process says why and serves on; a third upgrade, with
// everything fixed, goes through.
func TestUpgradeFailureKeepsServing(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "splicer")
	copyFile(t, testBinary(t), bin)
	e := startEcho(t)
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	good := baseConfig(t, dir, adminAddr, 5*time.Second) + frontendConfig("main", front, "", be{"e0", e.addr, 1})
	writeFile(t, path, good)
	p := startSplicer(t, bin, path, adminAddr)

	upgrade := func() (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"upgrade", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	// A package that installed a broken binary.
	writeFile(t, bin+".new", "#!/bin/sh\necho 'broken build' >&2\nexit 3\n")
	os.Chmod(bin+".new", 0o755)
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	if code, msg := upgrade(); code != exitFail || !strings.Contains(msg, "exit status 3") {
		t.Errorf("upgrade to a broken binary: exit %d, %q", code, msg)
	}
	echoOnce(t, front)

	// The right binary, a config it refuses.
	copyFile(t, testBinary(t), bin)
	writeFile(t, path, strings.Replace(good, `weight = 1`, `weight = 1000`, 1))
	badWeight := regexp.MustCompile(`the new process could not start: ` + regexp.QuoteMeta(path) +
		`:\d+: frontend "main": backend\[0\]\.weight: must be between 1 and 256, got 1000`)
	if code, msg := upgrade(); code != exitFail || !badWeight.MatchString(msg) {
		t.Errorf("upgrade with a bad config: exit %d, %q", code, msg)
	}
	echoOnce(t, front)
	if n := len(startedPIDs(p)); n != 1 {
		t.Fatalf("%d processes started, want the first alone", n)
	}

	writeFile(t, path, good)
	if code, msg := upgrade(); code != exitOK {
		t.Fatalf("upgrade: exit %d, %q", code, msg)
	}
	if code, ok := p.exited(10 * time.Second); !ok || code != 0 {
		t.Errorf("the old process: exited %v, code %d", ok, code)
	}
	echoOnce(t, front)
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tmp := to + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// fdLinks lists what pid's fds point at.
func fdLinks(t testing.TB, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if link, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, e.Name()+" "+link)
		}
	}
	slices.Sort(out)
	return out
}

// TestSecondInstanceRefused starts a second splicer on the addresses of a
// running one: it exits 1 naming the first, before binding anything, and
// the first keeps every fd and serves on.
func TestSecondInstanceRefused(t *testing.T) {
	dir := t.TempDir()
	e := startEcho(t)
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+frontendConfig("main", front, "", be{"e0", e.addr, 1}))
	first := startSplicer(t, testBinary(t), path, adminAddr)
	before := fdLinks(t, first.pid())

	// The second has its own admin port: only the frontend clashes.
	path2 := filepath.Join(dir, "second.toml")
	writeFile(t, path2, baseConfig(t, dir, freeAddr(t), time.Second)+frontendConfig("other", front, "", be{"e0", e.addr, 1}))
	second := launch(t, testBinary(t), path2, "")
	code, ok := second.exited(15 * time.Second)
	want := regexp.MustCompile(`listen tcp ` + regexp.QuoteMeta(front) + `: already served by splicer pid ` +
		strconv.Itoa(first.pid()) + ` \(config ` + regexp.QuoteMeta(path) + `\) \(lock .*\): stop that instance first, or replace it with \\"splicer upgrade\\"`)
	if !ok || code != exitFail || !want.MatchString(second.logs()) {
		t.Errorf("second instance: exited %v with %d, log:\n%s", ok, code, second.logs())
	}
	if strings.Contains(second.logs(), "admin port listening") {
		t.Error("the second instance bound its admin port before checking the locks")
	}
	if after := fdLinks(t, first.pid()); !slices.Equal(before, after) {
		t.Errorf("the first instance's fds changed:\n%v\n%v", before, after)
	}
	echoOnce(t, front)
}

// TestUpgradeHandsOverConnections upgrades under 200 checksummed streams
// both ways, 50 idle connections and 100 new connections a second, with
// the default hand-over: every stream goes on through the new process
// without a reset, an early end or a wrong byte, the idle ones still
// answer, the connection list shows the same IDs, and the old process is
// gone within 2 s of the hand-over's start.
func TestUpgradeHandsOverConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	dir := t.TempDir()
	e := []*echoServer{startEcho(t), startEcho(t)}
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, 30*time.Second)+
		frontendConfig("main", front, "", be{"e0", e[0].addr, 1}, be{"e1", e[1].addr, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	const streams, idle = 200, 50
	l := startLoad(t, front, 100, streams, 400)
	var idlers []net.Conn
	for i := 0; i < idle; i++ {
		c, err := net.DialTimeout("tcp", front, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idlers = append(idlers, c)
	}
	var before []uint64
	testutil.WaitFor(t, 10*time.Second, "every stream and idle connection listed", func() bool {
		before = connIDs(t, dir, adminAddr)
		return len(before) >= streams+idle
	})
	time.Sleep(500 * time.Millisecond) // the streams flow
	// The long-lived connections (streams, idle) are those listed both
	// times; the short ones come and go in milliseconds.
	first := before
	before = connIDs(t, dir, adminAddr)
	var long []uint64
	for _, id := range before {
		if slices.Contains(first, id) {
			long = append(long, id)
		}
	}
	if len(long) < streams+idle {
		t.Fatalf("%d long-lived connections listed, want at least %d", len(long), streams+idle)
	}
	oldPID := startedPIDs(p)[0]

	start := time.Now()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"upgrade", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut); code != exitOK {
		t.Fatalf("splicer upgrade: exit %d: %s%s", code, out.String(), errOut.String())
	}
	returned := time.Now()
	testutil.WaitFor(t, 10*time.Second, "the old process gone", func() bool { return gone(oldPID) })
	handed := p.logRecord("upgrade: connections handed over to the new process")
	if handed == nil {
		t.Fatal("no hand-over logged")
	}
	// From the old process's own clock: the hand-over begins once the new
	// process serves, and the old one is done at "splicer stopped" (its
	// exit follows at once). Draining instead would hold it for
	// shutdown_timeout (30 s); it takes 0.1-0.2 s on a quiet machine and
	// under a second with the race detector on a loaded one.
	began, stopped := logTime(t, p.logRecord("upgrade: the new process serves; this one stopped accepting")),
		logTime(t, p.logRecord("splicer stopped"))
	if took := stopped.Sub(began); took < 0 || took > 2*time.Second {
		t.Errorf("the old process stopped %v after the hand-over began, want within 2 s", took)
	}
	t.Logf("upgrade command %v; the old process stopped %v after the hand-over began", returned.Sub(start), stopped.Sub(began))
	after := connIDs(t, dir, adminAddr)
	var missing []uint64
	for _, id := range long {
		if !slices.Contains(after, id) {
			missing = append(missing, id)
		}
	}
	// Short connections come and go; every long-lived one must be there.
	if len(missing) > 0 {
		t.Errorf("long-lived connections %v are missing after the upgrade (%d listed before, %d after)", missing, len(long), len(after))
	}
	if handed["adopted_tcp"] != handed["tcp"] || handed["refused"] != 0.0 || handed["lost"] != 0.0 || handed["left_to_drain"] != 0.0 {
		t.Errorf("the hand-over said %v", handed)
	}
	t.Logf("hand-over: %v", handed)
	time.Sleep(time.Second) // the streams go on through the new process
	for i, c := range idlers {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := fmt.Sprintf("idle %d still here", i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("idle connection %d after the upgrade: %q, %v", i, buf, err)
		}
	}
	l.check(t, streams)
}

// connIDs lists the IDs of the daemon's open connections.
func connIDs(t testing.TB, dir, adminAddr string) []uint64 {
	t.Helper()
	resp, err := adminGet(t, dir, adminAddr, "/api/v1/connections?limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Connections []struct {
			ID uint64 `json:"id"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, c := range page.Connections {
		ids = append(ids, c.ID)
	}
	return ids
}

// psqlSession is a psql process reading statements from a pipe, its
// output collected.
type psqlSession struct {
	in  io.WriteCloser
	out *testutil.SyncBuffer
	cmd *exec.Cmd
}

func startPsql(t *testing.T, bin string, addr string) *psqlSession {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(filepath.Join(bin, "psql"), "-X", "-v", "ON_ERROR_STOP=1",
		"-d", "host="+host+" port="+port+" user=splicer dbname=postgres connect_timeout=5")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &psqlSession{in: in, out: &testutil.SyncBuffer{}, cmd: cmd}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return s
}

// run sends sql and waits for want in the output.
func (s *psqlSession) run(t *testing.T, sql, want string) {
	t.Helper()
	if _, err := io.WriteString(s.in, sql+"\n"); err != nil {
		t.Fatalf("psql: %v\n%s", err, s.out.String())
	}
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("psql to answer %q with %q", sql, want), func() bool {
		return strings.Contains(s.out.String(), want)
	})
}

// TestUpgradeKeepsPostgresSessions: a real PostgreSQL session through
// splicer runs a transaction across an upgrade (BEGIN and an INSERT
// before, another INSERT and COMMIT after), and a LISTEN session still
// gets a NOTIFY sent after the upgrade: the sessions were handed over,
// not cut.
func TestUpgradeKeepsPostgresSessions(t *testing.T) {
	pg := realdb.StartPostgres(t)
	pg.SQL(t, "CREATE TABLE upgraded (n int)")
	dir := t.TempDir()
	adminAddr, front := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, 30*time.Second)+
		frontendConfig("pg", front, "", be{"pg", pg.Addr.String(), 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	tx := startPsql(t, pg.Bin, front)
	tx.run(t, "BEGIN; INSERT INTO upgraded VALUES (1);", "INSERT 0 1")
	listener := startPsql(t, pg.Bin, front)
	listener.run(t, "LISTEN upgraded;", "LISTEN")
	oldPID := startedPIDs(p)[0]

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"upgrade", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut); code != exitOK {
		t.Fatalf("splicer upgrade: exit %d: %s%s", code, out.String(), errOut.String())
	}
	testutil.WaitFor(t, 10*time.Second, "the old process gone", func() bool { return gone(oldPID) })

	tx.run(t, "INSERT INTO upgraded VALUES (2); COMMIT;", "COMMIT")
	pg.SQL(t, "NOTIFY upgraded, 'after the upgrade'")
	listener.run(t, "SELECT 1;", `Asynchronous notification "upgraded" with payload "after the upgrade" received`)
	if got := pg.SQL(t, "SELECT string_agg(n::text, ',' ORDER BY n) FROM upgraded"); got != "1,2" {
		t.Errorf("rows after the transaction: %q, want 1,2", got)
	}
}

// udpTagged is a UDP backend that answers every datagram with its tag and
// the datagram.
func udpTagged(t *testing.T, tag string) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte(tag+":"), buf[:n]...), from)
		}
	}()
	return c.LocalAddr().String()
}

// TestUpgradeKeepsUDPFlows: a UDP flow keeps its backend and its ID across
// an upgrade, on the new process.
func TestUpgradeKeepsUDPFlows(t *testing.T) {
	dir := t.TempDir()
	a, b := udpTagged(t, "a"), udpTagged(t, "b")
	adminAddr := freeAddr(t)
	front := udpFreeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, 30*time.Second)+
		frontendConfig("dns", front, "protocol = \"udp\"\nstrategy = \"roundrobin\"", be{"a", a, 1}, be{"b", b, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	var clients []*net.UDPConn
	tags := map[int]string{}
	ask := func(i int, msg string) string {
		t.Helper()
		c := clients[i]
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		tag, rest, _ := strings.Cut(string(buf[:n]), ":")
		if rest != msg {
			t.Fatalf("client %d: answer %q to %q", i, buf[:n], msg)
		}
		return tag
	}
	for i := 0; i < 10; i++ {
		c, err := net.Dial("udp", front)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c.(*net.UDPConn))
		tags[i] = ask(i, "before")
	}
	before := connIDs(t, dir, adminAddr)
	oldPID := startedPIDs(p)[0]
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"upgrade", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut); code != exitOK {
		t.Fatalf("splicer upgrade: exit %d: %s%s", code, out.String(), errOut.String())
	}
	testutil.WaitFor(t, 10*time.Second, "the old process gone", func() bool { return gone(oldPID) })
	for i := range clients {
		if got := ask(i, "after"); got != tags[i] {
			t.Errorf("client %d answered by %s before the upgrade, %s after", i, tags[i], got)
		}
	}
	if after := connIDs(t, dir, adminAddr); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("flows before the upgrade %v, after %v", before, after)
	}
	if rec := p.logRecord("upgrade: connections handed over to the new process"); rec == nil || rec["adopted_udp_flows"] != 10.0 {
		t.Errorf("the hand-over said %v", rec)
	}
}

// udpFreeAddr returns a loopback UDP address with a port free right now.
func udpFreeAddr(t testing.TB) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// logTime is the time of a log record (zerolog's RFC 3339, milliseconds).
func logTime(t *testing.T, rec map[string]any) time.Time {
	t.Helper()
	s, _ := rec["time"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("log record %v: time %q: %v", rec, s, err)
	}
	return at
}
