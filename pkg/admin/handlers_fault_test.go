package admin

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// racingSource is a fakeSource whose changes fail as when the daemon
// changed under the request: a reload removed the backend or the
// connection closed between the lookup and the change, or the change was
// refused for its content, or failed outright.
type racingSource struct {
	*fakeSource
	err error // what SetState, SetWeight, CloseConnection and Connections return
	// connsErr is returned by Connections too when set.
	connsErr error
}

func (r *racingSource) SetState(string, string, string) error { return r.err }
func (r *racingSource) SetWeight(string, string, int) error   { return r.err }
func (r *racingSource) CloseConnection(uint64) error          { return r.err }
func (r *racingSource) Connections(fe string, after uint64, limit int) ([]stats.Conn, int, error) {
	if r.connsErr != nil {
		return nil, 0, r.connsErr
	}
	return r.fakeSource.Connections(fe, after, limit)
}

// TestChangeFailsAfterItsRecord makes each change fail after its audit
// record was written: the answer carries the Source's reason with the
// status its kind maps to, and a second record says the change failed,
// so the log never shows as done what did not happen.
func TestChangeFailsAfterItsRecord(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"removed by a reload", fmt.Errorf(`frontend "pg" has no backend "a": %w`, ErrNotFound), http.StatusNotFound},
		{"refused for its content", fmt.Errorf("weight 7 on a backup: %w", ErrInvalid), http.StatusBadRequest},
		{"failed outright", errors.New("the event loop is shutting down"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec, path := newAuditedSecurity(t, AuditOptions{})
			src := &racingSource{fakeSource: newFakeSource(), err: tc.err}
			h := newTestServer(src, Options{Security: sec}).Handler()
			wantBody := fmt.Sprintf(`{"error":%q}`+"\n", tc.err.Error())
			for _, req := range []struct{ method, target, body, action string }{
				{"POST", statePath, `{"state":"drain"}`, "backend.state"},
				{"PUT", "/api/v1/frontends/pg/backends/a/weight", `{"weight":7}`, "backend.weight"},
				{"DELETE", "/api/v1/connections/3", "", "connection.kill"},
			} {
				got := do(t, h, req.method, req.target, req.body)
				if got.status != tc.status || got.body != wantBody {
					t.Errorf("%s %s: %d %s, want %d %s", req.method, req.target, got.status, got.body, tc.status, wantBody)
				}
				recs := readAudit(t, path)
				last := recs[len(recs)-2:]
				if want := fmt.Sprintf("error: %d %v", tc.status, tc.err); last[0].Result != "ok" || last[1].Result != want ||
					last[0].Action != req.action || last[1].Action != req.action || last[0].Target != last[1].Target {
					t.Errorf("%s: records %+v\nwant ok then %q", req.action, last, want)
				}
			}
		})
	}
}

// TestConnectionRoutesRefusals lists and closes connections where the
// caller's scope or the Source says no: each refusal has its status and
// reason, and nothing is closed.
func TestConnectionRoutesRefusals(t *testing.T) {
	sec := newTestSecurity()
	users := testUsers()
	both, _ := ParseRole("operator:pg,cache")
	users.list = append(users.list, User{Name: "bea", Role: both, Digest: TokenDigest("splicer_test-both"), HasToken: true})
	sec.access.Store(&Access{users: users})
	src := &racingSource{fakeSource: newFakeSource()}
	h := newTestServer(src, Options{Security: sec}).Handler()
	for _, tc := range []struct {
		token, target string
		status        int
		body          string
	}{
		{"splicer_test-both", "/api/v1/connections", http.StatusForbidden,
			`{"error":"role operator:pg,cache is scoped: list one frontend at a time with ?frontend="}`},
		{scopedToken, "/api/v1/connections?frontend=pg", http.StatusForbidden,
			`{"error":"role operator:cache does not cover frontend \"pg\""}`},
		{"splicer_test-both", "/api/v1/connections?frontend=cache", http.StatusOK,
			`{"connections":[{"id":5,"frontend":"cache","client":"127.0.0.1:40002","backend":"","state":"connecting","age_seconds":0.25,"bytes_in":0,"bytes_out":0}],"total":1,"next_after":0}`},
	} {
		got := doAs(t, h, tc.token, "GET", tc.target, "")
		if got.status != tc.status || got.body != tc.body+"\n" {
			t.Errorf("GET %s: %d %s\nwant %d %s", tc.target, got.status, got.body, tc.status, tc.body)
		}
	}

	src.connsErr = errors.New("the event loop is shutting down")
	got := do(t, h, "DELETE", "/api/v1/connections/3", "")
	if got.status != http.StatusInternalServerError || got.body != `{"error":"the event loop is shutting down"}`+"\n" {
		t.Errorf("close while the Source fails: %d %s", got.status, got.body)
	}
	if _, n, _ := src.fakeSource.Connections("", 0, 10); n != 4 {
		t.Errorf("%d connections left, want 4", n)
	}
}

// TestAnswersThatCannotBeEncoded serves stats holding a NaN (a rate of
// nothing over nothing): a clean 500 that says why, not half a body.
func TestAnswersThatCannotBeEncoded(t *testing.T) {
	src := newFakeSource()
	src.st.Frontends[0].Rates.Now.Conns = math.NaN()
	got := do(t, newTestServer(src, Options{}).Handler(), "GET", "/api/v1/stats", "")
	if got.status != http.StatusInternalServerError ||
		got.body != `{"error":"encoding response: json: unsupported value: NaN"}`+"\n" ||
		got.header.Get("Content-Type") != "application/json" {
		t.Errorf("stats with a NaN: %d %q %s", got.status, got.header.Get("Content-Type"), got.body)
	}
}

// TestEmptyDaemon serves a daemon without frontends and without lifecycle
// control: the lists are empty, never null, and the lifecycle routes say
// what is missing.
func TestEmptyDaemon(t *testing.T) {
	h := newTestServer(emptySource{newFakeSource()}, Options{}).Handler()
	if got := do(t, h, "GET", "/api/v1/stats", ""); got.status != http.StatusOK || !strings.Contains(got.body, `"frontends":[]`) {
		t.Errorf("stats: %d %s", got.status, got.body)
	}
	for _, req := range []struct{ method, target string }{{"GET", "/api/v1/state"}, {"POST", "/api/v1/reload"}} {
		got := do(t, h, req.method, req.target, "{}")
		if got.status != http.StatusNotImplemented || got.body != `{"error":"this admin server does not control a daemon process"}`+"\n" {
			t.Errorf("%s %s: %d %s", req.method, req.target, got.status, got.body)
		}
	}
}

// emptySource reports no frontends.
type emptySource struct{ *fakeSource }

func (emptySource) Stats() stats.Stats { return stats.Stats{Version: "1.2.3"} }

// failingCollector fails every scrape.
type failingCollector struct{ desc *prometheus.Desc }

func (f failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }
func (f failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(f.desc, errors.New("the stats snapshot timed out"))
}

// TestMetricsScrapeFails serves a registry whose collector fails: the
// scrape is answered 500, and the daemon's log says which collector
// failed and why.
func TestMetricsScrapeFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(failingCollector{prometheus.NewDesc("splicer_test", "A collector that fails.", nil, nil)})
	var log testutil.SyncBuffer
	s := New(newFakeSource(), reg, zerolog.New(&log), Options{Security: newTestSecurity()})
	got := do(t, s.Handler(), "GET", "/metrics", "")
	if got.status != http.StatusInternalServerError || !strings.Contains(got.body, "the stats snapshot timed out") {
		t.Errorf("scrape: %d %s", got.status, got.body)
	}
	if line := log.String(); !strings.HasPrefix(line, `{"level":"error","message":"error gathering metrics:`) ||
		!strings.Contains(line, "the stats snapshot timed out") {
		t.Errorf("log:\n%s\nwant an error line with the collector's error", line)
	}
}

// TestListenAndServe serves on an address given as text, and reports an
// address that cannot be had.
func TestListenAndServe(t *testing.T) {
	addr := testutil.ReserveTCP(t).String()
	s := newTestServer(newFakeSource(), Options{})
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(addr) }()
	testutil.WaitFor(t, browserWait, "the admin port", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	if err := newTestServer(newFakeSource(), Options{}).ListenAndServe(taken); err == nil ||
		err.Error() != "admin: listen: listen tcp "+taken+": bind: address already in use" {
		t.Errorf("a port in use: %v", err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ListenAndServe after Shutdown: %v", err)
	}
}
