package daemon

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/demo"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// fakePatroni answers like Patroni's REST API for one node: GET /primary
// (and its aliases) 200 on the leader, /replica 200 on a running replica
// whose lag is within the lag query parameter, /read-only on either,
// /health while running; 503 otherwise, with a JSON body as Patroni's.
type fakePatroni struct {
	mu   sync.Mutex
	role string // "master", "replica" or "stopped"
	lag  int64  // replication lag in bytes
}

func (p *fakePatroni) set(role string, lag int64) {
	p.mu.Lock()
	p.role, p.lag = role, lag
	p.mu.Unlock()
}

func (p *fakePatroni) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	role, lag := p.role, p.lag
	p.mu.Unlock()
	ok := false
	switch r.URL.Path {
	case "/primary", "/master", "/leader", "/read-write":
		ok = role == "master"
	case "/replica":
		ok = role == "replica"
		if max := r.URL.Query().Get("lag"); ok && max != "" {
			ok = lag <= parseLag(max)
		}
	case "/read-only":
		ok = role == "master" || role == "replica"
	case "/health":
		ok = role != "stopped"
	default:
		http.NotFound(w, r)
		return
	}
	status := http.StatusServiceUnavailable
	if ok {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	state := "running"
	if role == "stopped" {
		state = "stopped"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"state": state, "role": role, "xlog": map[string]int64{"lag": lag}})
}

// parseLag reads Patroni's lag parameter: bytes, or with kB, MB, GB.
func parseLag(s string) int64 {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, _ := strconv.ParseInt(n, 10, 64)
			return v * u.mult
		}
	}
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}

// patroniNode is a node at its own loopback address: a database stand-in
// (a demo server that names itself) and the fake REST API.
type patroniNode struct {
	api *fakePatroni
	db  *demo.Server
}

// samePorts listens on the same two free ports at each of ips: the REST
// API's and the database's, as every node of a cluster uses.
func patroniNodes(t *testing.T, ips ...string) (nodes []*patroniNode, apiPort, dbPort uint16) {
	t.Helper()
	for try := 0; try < 50; try++ {
		var lns []net.Listener
		var dbs []*demo.Server
		cleanup := func() {
			for _, ln := range lns {
				ln.Close()
			}
			for _, s := range dbs {
				s.Close()
			}
		}
		ok := true
		for i, ip := range ips {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(int(apiPort))))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
			db, err := demo.Start(netip.AddrPortFrom(netip.MustParseAddr(ip), dbPort))
			if err != nil {
				ok = false
				break
			}
			dbs = append(dbs, db)
			if i == 0 {
				apiPort = uint16(ln.Addr().(*net.TCPAddr).Port)
				dbPort = db.Addr().Port()
			}
		}
		if !ok {
			cleanup()
			apiPort, dbPort = 0, 0
			continue
		}
		for i := range ips {
			n := &patroniNode{api: &fakePatroni{role: "replica"}, db: dbs[i]}
			srv := &http.Server{Handler: n.api}
			go srv.Serve(lns[i])
			t.Cleanup(func() {
				srv.Close()
				n.db.Close()
			})
			nodes = append(nodes, n)
		}
		return nodes, apiPort, dbPort
	}
	t.Fatal("no ports free on every node address")
	return nil, 0, 0
}

// patroniExample returns the Patroni example of docs/databases.md.
func patroniExample(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/databases.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "<!-- example: patroni -->\n```toml\n")
	example, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("docs/databases.md lacks the Patroni example")
	}
	return example
}

// TestPatroniExample runs the Patroni example of docs/databases.md, with
// its addresses and intervals changed, against two nodes faking Patroni's
// REST API: the read-write frontend follows the leader and the read-only
// one the replica, and a switchover moves both within fall × interval +
// 1 s, resetting the sessions left on the old leader.
func TestPatroniExample(t *testing.T) {
	nodes, apiPort, dbPort := patroniNodes(t, "127.0.0.2", "127.0.0.3")
	a, b := nodes[0], nodes[1]
	a.api.set("master", 0)
	b.api.set("replica", 1<<20)
	text := strings.NewReplacer(
		"10.0.0.11:5432", "127.0.0.2:"+strconv.Itoa(int(dbPort)),
		"10.0.0.12:5432", "127.0.0.3:"+strconv.Itoa(int(dbPort)),
		"port = 8008", "port = "+strconv.Itoa(int(apiPort)),
		`"0.0.0.0:5000"`, `"127.0.0.1:0"`,
		`"0.0.0.0:5001"`, `"127.0.0.1:0"`,
		`interval = "1s"`, `interval = "200ms"`,
	).Replace(patroniExample(t))
	cfg, err := config.Parse([]byte("[admin]\nlisten = \"\"\n"+text), "patroni.toml")
	if err != nil {
		t.Fatal(err)
	}
	const interval, fall = 200 * time.Millisecond, 3
	d := runDaemon(t, cfg)
	rw, ro := listenAddr(t, d, "pg-rw").String(), listenAddr(t, d, "pg-ro").String()
	greetA := "hello from demo backend " + a.db.Addr().String() + "\n"
	greetB := "hello from demo backend " + b.db.Addr().String() + "\n"
	testutil.WaitFor(t, 10*time.Second, "roles settled", func() bool { return healthy(d, "pg-rw") == "+-" && healthy(d, "pg-ro") == "-+" })
	for range 10 {
		if got := greeting(t, rw); got != greetA {
			t.Fatalf("pg-rw greeted %q, want the leader's %q", got, greetA)
		}
		if got := greeting(t, ro); got != greetB {
			t.Fatalf("pg-ro greeted %q, want the replica's %q", got, greetB)
		}
	}
	held, err := net.Dial("tcp", rw)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	// A replica too far behind leaves pg-ro.
	b.api.set("replica", 64<<20)
	testutil.WaitFor(t, 5*time.Second, "the lagging replica out of pg-ro", func() bool { return healthy(d, "pg-ro") == "--" })
	b.api.set("replica", 0)

	// Switchover: Patroni demotes the leader, then promotes the replica.
	switched := time.Now()
	a.api.set("replica", 0)
	b.api.set("master", 0)
	testutil.WaitFor(t, 10*time.Second, "pg-rw on the new leader", func() bool { return greeting(t, rw) == greetB })
	took := time.Since(switched)
	t.Logf("pg-rw moved %v after the switchover (bound %v)", took, fall*interval+time.Second)
	if took > fall*interval+time.Second {
		t.Errorf("pg-rw moved %v after the switchover, want at most %v", took, fall*interval+time.Second)
	}
	testutil.WaitFor(t, 10*time.Second, "pg-ro on the demoted leader", func() bool { return greeting(t, ro) == greetA })
	held.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	for {
		if _, err := held.Read(buf); err != nil {
			if strings.Contains(err.Error(), "timeout") {
				t.Fatal("the session on the old leader is still open")
			}
			break
		}
	}
}
