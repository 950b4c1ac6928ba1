package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestAdminStatsExact drives connections with known byte counts through the
// daemon and checks the admin API's figures to the byte.
func TestAdminStatsExact(t *testing.T) {
	back := startDemo(t)
	users, tokens := writeUsers(t, "operator")
	cfg, err := config.New().AdminListen("127.0.0.1:0").AdminUsersFile(users).Frontend("t").Listen("127.0.0.1:0").
		Backend(back.Addr().String(), 1).HealthCheck("none").HealthPassiveFall(0).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := frontAddr(t, d)
	base := "http://" + d.adminLn.Addr().String()

	greetingLen := len("hello from demo backend " + back.Addr().String() + "\n")
	const conns = 7
	var sent int
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := strings.Repeat("x", 100*(i+1))
		sent += len(msg)
		c.Write([]byte(msg))
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(got) != greetingLen+len(msg) {
			t.Fatalf("conn %d: %d bytes back, %v", i, len(got), err)
		}
	}
	var st stats.Stats
	testutil.WaitFor(t, 5*time.Second, "all connections closed in stats", func() bool {
		st = getStats(t, base, tokens["operator"])
		return len(st.Frontends) == 1 && st.Frontends[0].Active == 0
	})
	fe := st.Frontends[0]
	if fe.Name != "t" || fe.Total != conns || fe.BytesIn != uint64(sent) || fe.BytesOut != uint64(sent+conns*greetingLen) {
		t.Errorf("frontend %+v, want total %d, in %d, out %d", fe, conns, sent, sent+conns*greetingLen)
	}
	if st.MaxConnections != 10000 || st.Connections != 0 || len(fe.Refused) != len(stats.RefusalReasons()) || fe.Refused["no_backend"] != 0 ||
		fe.QueuedNow != 0 || len(fe.QueueWaitBuckets) != backend.NumDurationBounds || fe.QueueWaitCount != 0 {
		t.Errorf("pool figures: global %d/%d, refused %v, queued now %d, wait buckets %d (count %d)",
			st.Connections, st.MaxConnections, fe.Refused, fe.QueuedNow, len(fe.QueueWaitBuckets), fe.QueueWaitCount)
	}
	be := fe.Backends[0]
	if be.Total != conns || be.Active != 0 || be.BytesIn != uint64(sent) || be.BytesOut != uint64(sent+conns*greetingLen) ||
		be.ConnectCount != conns || be.ConnectFailures["refused"] != 0 || be.State != "ready" || !be.Health.Up || be.Health.Checked {
		t.Errorf("backend %+v", be)
	}

	// Prometheus reads the same counters at scrape time.
	mreq, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	mreq.Header.Set("Authorization", "Bearer "+tokens["operator"])
	resp, err := http.DefaultClient.Do(mreq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	labels := `backend="` + back.Addr().String() + `",frontend="t"`
	for _, want := range []string{
		fmt.Sprintf(`splicer_backend_bytes_total{backend="%s",direction="in",frontend="t"} %d`, back.Addr(), sent),
		fmt.Sprintf(`splicer_backend_bytes_total{backend="%s",direction="out",frontend="t"} %d`, back.Addr(), sent+conns*greetingLen),
		fmt.Sprintf(`splicer_frontend_connections_total{frontend="t"} %d`, conns),
		fmt.Sprintf(`splicer_backend_connections_total{%s} %d`, labels, conns),
		fmt.Sprintf(`splicer_backend_connect_seconds_count{%s} %d`, labels, conns),
		fmt.Sprintf(`splicer_backend_up{%s} 1`, labels),
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Runtime control shows in stats at once.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/frontends/t/backends/"+back.Addr().String()+"/state",
		strings.NewReader(`{"state":"drain"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tokens["operator"])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("drain: %s", resp.Status)
	}
	if got := getStats(t, base, tokens["operator"]).Frontends[0].Backends[0].State; got != "drain" {
		t.Errorf("state after drain %q", got)
	}
	// A drained backend takes no new client: with no other backend, the
	// client is reset without a greeting, and counted under no_backend.
	c, err := net.Dial("tcp", front)
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		got, err = io.ReadAll(c)
		c.Close()
		if len(got) != 0 {
			t.Errorf("drained backend greeted: %q", got)
		}
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client of a frontend with no backend: %v, want a reset", err)
	}
	testutil.WaitFor(t, 5*time.Second, "the refusal counted", func() bool {
		return getStats(t, base, tokens["operator"]).Frontends[0].Closed["no_backend"] == 1
	})
	if got := getStats(t, base, tokens["operator"]).Frontends[0].Closed; got["client_fin"] != conns {
		t.Errorf("closed by cause %v, want %d client_fin", got, conns)
	}
}

// writeUsers writes a users file with one user per role given, named
// after the role, and returns its path and the tokens by role.
func writeUsers(t *testing.T, roles ...string) (string, map[string]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	tokens := map[string]string{}
	for _, r := range roles {
		role, err := admin.ParseRole(r)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := admin.AddUser(path, role.Name, role, false)
		if err != nil {
			t.Fatal(err)
		}
		tokens[r] = tok
	}
	return path, tokens
}

// getStats reads the stats as the anonymous user of a loopback admin port
// without users, or with the token of tokens["viewer"] or ["operator"].
func getStats(t *testing.T, base string, tokens ...string) stats.Stats {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/stats", nil)
	if len(tokens) > 0 {
		req.Header.Set("Authorization", "Bearer "+tokens[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st stats.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
