package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// compactJSON returns s without insignificant space, plus the newline the
// encoder ends with, for exact comparison with a response body.
func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatalf("bad expected JSON: %v", err)
	}
	return buf.String() + "\n"
}

const wantStatsJSON = `{
 "version": "1.2.3", "revision": "", "go_version": "", "started_at": "2026-11-26T12:00:00Z", "uptime_seconds": 3725,
 "pipes_in_use": 3, "pipes_max": 4096, "pipes_small": 0, "fds": 42, "connections": 2, "max_connections": 10000,
 "connection_log": {"lines": 0, "dropped_buffer_full": 0, "dropped_write_failed": 0},
 "frontends": [{
  "name": "pg", "listen": ["127.0.0.1:6432"], "protocol": "tcp", "strategy": "leastconn",
  "active": 2, "peak": 6, "total": 10, "rejected": 1, "queued": 4, "bytes_in": 1000, "bytes_out": 5000,
  "max_connections": 100, "queued_now": 1, "queue_timeouts": 1,
  "refused": {"access_list": 5, "no_backend": 0, "per_client": 0, "queue_full": 0, "queue_timeout": 1, "rate_limit": 0},
  "queue_wait_buckets": [{"le": 0.001, "count": 2}, {"le": 0.01, "count": 3}],
  "queue_wait_count": 3, "queue_wait_sum_seconds": 0.006, "datagrams_in": 0, "datagrams_out": 0,
  "closed": {"access_list": 5, "client_fin": 3, "queue_timeout": 1},
  "rates": {
   "now": {"conns_per_second": 12.5, "bytes_in_per_second": 1500, "bytes_out_per_second": 2500000, "active": 2,
    "queued": 1, "errors_per_second": 0.5, "connect_p50_seconds": 0, "connect_p99_seconds": 0},
   "peak": {"conns_per_second": 140, "bytes_in_per_second": 12000, "bytes_out_per_second": 3200000, "active": 5,
    "queued": 4, "errors_per_second": 2, "connect_p50_seconds": 0, "connect_p99_seconds": 0},
   "window_seconds": 600},
  "backends": [{
   "name": "a", "address": "127.0.0.1:5432", "weight": 100, "effective_weight": 100,
   "state": "ready", "backup": false, "max_connections": 50,
   "health": {"checked": true, "check": "tcp", "up": true, "last_ok": true, "last_message": "ok",
    "last_duration_seconds": 0.0015, "last_check": "2026-11-26T13:00:00Z",
    "last_change": "2026-11-26T12:01:00Z", "successes": 5, "failures": 0, "passive_failures": 0,
    "checks_passed": 0, "checks_failed": 0, "check_count": 0, "check_sum_seconds": 0,
    "transitions_up": 0, "transitions_down": 0},
   "active": 2, "peak": 6, "total": 7, "bytes_in": 700, "bytes_out": 3500,
   "datagrams_in": 0, "datagrams_out": 0, "foreign_drops": 0,
   "connect_failures": {"other": 0, "refused": 2, "reset": 0, "timeout": 1, "unreachable": 0},
   "resets": 1, "closed": {"backend_reset": 1, "client_fin": 3}, "pipes_in_use": 2, "connect_p50_seconds": 0.0005, "connect_p99_seconds": 0.001,
   "connect_buckets": [{"le": 0.001, "count": 6}, {"le": 0.01, "count": 7}],
   "connect_count": 7, "connect_sum_seconds": 0.0042,
   "rates": {
    "now": {"conns_per_second": 12.5, "bytes_in_per_second": 1500, "bytes_out_per_second": 2500000, "active": 2,
     "queued": 0, "errors_per_second": 0.5, "connect_p50_seconds": 0.0004, "connect_p99_seconds": 0.0009},
    "peak": {"conns_per_second": 140, "bytes_in_per_second": 12000, "bytes_out_per_second": 3200000, "active": 5,
     "queued": 0, "errors_per_second": 2, "connect_p50_seconds": 0.0006, "connect_p99_seconds": 0.002},
    "window_seconds": 600}
  }, {
   "name": "[::1]:5433", "address": "[::1]:5433", "weight": 50, "effective_weight": 10,
   "state": "drain", "backup": true, "max_connections": 0,
   "health": {"checked": true, "check": "tcp", "up": false, "last_ok": false,
    "last_message": "connect: connection refused", "last_duration_seconds": 0.0002,
    "last_check": "2026-11-26T13:00:00Z", "successes": 0, "failures": 3, "passive_failures": 0,
    "checks_passed": 0, "checks_failed": 0, "check_count": 0, "check_sum_seconds": 0,
    "transitions_up": 0, "transitions_down": 0},
   "active": 0, "peak": 1, "total": 3, "bytes_in": 300, "bytes_out": 1500,
   "datagrams_in": 0, "datagrams_out": 0, "foreign_drops": 0,
   "connect_failures": {"other": 0, "refused": 0, "reset": 0, "timeout": 0, "unreachable": 0},
   "resets": 0, "closed": null, "pipes_in_use": 0, "connect_p50_seconds": 0, "connect_p99_seconds": 0,
   "connect_buckets": [{"le": 0.001, "count": 3}, {"le": 0.01, "count": 3}],
   "connect_count": 3, "connect_sum_seconds": 0.0009
  }]
 }, {
  "name": "cache", "listen": ["127.0.0.1:6380", "[::1]:6380"], "protocol": "tcp", "strategy": "maglev",
  "active": 0, "peak": 0, "total": 0, "rejected": 0, "queued": 0, "bytes_in": 0, "bytes_out": 0,
  "max_connections": 0, "queued_now": 0, "queue_timeouts": 0, "refused": null,
  "queue_wait_buckets": null, "queue_wait_count": 0, "queue_wait_sum_seconds": 0,
  "datagrams_in": 0, "datagrams_out": 0, "closed": null,
  "backends": []
 }]
}`

func TestStatsJSON(t *testing.T) {
	h := newTestServer(newFakeSource(), Options{}).Handler()
	got := do(t, h, http.MethodGet, "/api/v1/stats", "")
	if got.status != http.StatusOK || got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", got.status, got.header.Get("Content-Type"))
	}
	if want := compactJSON(t, wantStatsJSON); got.body != want {
		t.Errorf("body:\n%s\nwant:\n%s", got.body, want)
	}
}

func TestProbes(t *testing.T) {
	tests := []struct {
		name       string
		ready      bool
		target     string
		wantStatus int
		wantBody   string
	}{
		{"healthz while not ready", false, "/healthz", 200, "ok\n"},
		{"healthz when ready", true, "/healthz", 200, "ok\n"},
		{"readyz when ready", true, "/readyz", 200, "ready\n"},
		{"readyz while not ready", false, "/readyz", 503, "not ready\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			src.setReady(tc.ready)
			got := do(t, newTestServer(src, Options{}).Handler(), http.MethodGet, tc.target, "")
			if got.status != tc.wantStatus || got.body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	const statePath = "/api/v1/frontends/pg/backends/a/state"
	tests := []struct {
		name, method, target string
		wantStatus           int
		wantAllow            string
		wantBody             string
	}{
		{"GET on a mutation", "GET", statePath + "?state=drain", 405, "POST",
			`{"error":"method GET not allowed on ` + statePath + `; allowed: POST"}`},
		{"PUT on state", "PUT", statePath, 405, "POST",
			`{"error":"method PUT not allowed on ` + statePath + `; allowed: POST"}`},
		{"GET on weight", "GET", "/api/v1/frontends/pg/backends/a/weight", 405, "PUT",
			`{"error":"method GET not allowed on /api/v1/frontends/pg/backends/a/weight; allowed: PUT"}`},
		{"POST on stats", "POST", "/api/v1/stats", 405, "GET, HEAD",
			`{"error":"method POST not allowed on /api/v1/stats; allowed: GET, HEAD"}`},
		{"GET on a connection", "GET", "/api/v1/connections/3", 405, "DELETE",
			`{"error":"method GET not allowed on /api/v1/connections/3; allowed: DELETE"}`},
		{"DELETE on the list", "DELETE", "/api/v1/connections", 405, "GET, HEAD",
			`{"error":"method DELETE not allowed on /api/v1/connections; allowed: GET, HEAD"}`},
		{"unknown path", "GET", "/api/v2/stats", 404, "",
			`{"error":"no such path \"/api/v2/stats\""}`},
		{"unknown page", "GET", "/index.html", 404, "",
			`{"error":"no such path \"/index.html\""}`},
	}
	src := newFakeSource()
	h := newTestServer(src, Options{}).Handler()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, h, tc.method, tc.target, "")
			if got.status != tc.wantStatus || got.header.Get("Allow") != tc.wantAllow || got.body != tc.wantBody+"\n" {
				t.Errorf("got %d Allow %q %s, want %d Allow %q %s",
					got.status, got.header.Get("Allow"), got.body, tc.wantStatus, tc.wantAllow, tc.wantBody)
			}
		})
	}
	if st := src.Stats().Frontends[0].Backends[0].State; st != "ready" {
		t.Errorf("refused requests changed the state to %q", st)
	}
}

// TestHeadServedWhereGetIs goes through a real server, which is what drops
// the body of a HEAD answer.
func TestHeadServedWhereGetIs(t *testing.T) {
	base := serveTCP(t, newTestServer(newFakeSource(), Options{}))
	req, _ := http.NewRequest(http.MethodHead, base+"/api/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD /api/v1/stats: %d %q, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestSetState(t *testing.T) {
	tests := []struct {
		name, target, body string
		wantStatus         int
		wantBody           string
		// wantState is the state of backend `be` of pg afterwards.
		be, wantState string
	}{
		{"drain by body", "/api/v1/frontends/pg/backends/a/state", `{"state":"drain"}`, 200,
			`{"frontend":"pg","backend":"a","state":"drain"}`, "a", "drain"},
		{"state in the query is not read", "/api/v1/frontends/pg/backends/a/state?state=maint", "", 400,
			`{"error":"missing field \"state\""}`, "a", "ready"},
		{"percent-encoded IPv6 name", "/api/v1/frontends/pg/backends/%5B%3A%3A1%5D%3A5433/state", `{"state":"ready"}`, 200,
			`{"frontend":"pg","backend":"[::1]:5433","state":"ready"}`, "[::1]:5433", "ready"},
		{"bad state", "/api/v1/frontends/pg/backends/a/state", `{"state":"off"}`, 400,
			`{"error":"field \"state\": \"off\" is not one of ready, drain, maint"}`, "a", "ready"},
		{"missing state", "/api/v1/frontends/pg/backends/a/state", `{}`, 400,
			`{"error":"missing field \"state\""}`, "a", "ready"},
		{"empty body", "/api/v1/frontends/pg/backends/a/state", ``, 400,
			`{"error":"missing field \"state\""}`, "a", "ready"},
		{"state of wrong type", "/api/v1/frontends/pg/backends/a/state", `{"state":1}`, 400,
			`{"error":"field \"state\": want a string, got number"}`, "a", "ready"},
		{"unknown field", "/api/v1/frontends/pg/backends/a/state", `{"stat":"drain"}`, 400,
			`{"error":"request body: json: unknown field \"stat\""}`, "a", "ready"},
		{"two values", "/api/v1/frontends/pg/backends/a/state", `{"state":"drain"} {}`, 400,
			`{"error":"request body: more than one JSON value"}`, "a", "ready"},
		{"unknown frontend", "/api/v1/frontends/nope/backends/a/state", `{"state":"drain"}`, 404,
			`{"error":"no frontend \"nope\": not found"}`, "a", "ready"},
		{"unknown backend", "/api/v1/frontends/pg/backends/10.0.0.1:1/state", `{"state":"drain"}`, 404,
			`{"error":"frontend \"pg\" has no backend \"10.0.0.1:1\": not found"}`, "a", "ready"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			h := newTestServer(src, Options{}).Handler()
			got := do(t, h, http.MethodPost, tc.target, tc.body)
			if got.status != tc.wantStatus || got.body != tc.wantBody+"\n" {
				t.Errorf("got %d %s, want %d %s", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
			var st struct {
				Frontends []struct {
					Backends []struct{ Name, State string }
				}
			}
			if err := json.Unmarshal([]byte(do(t, h, http.MethodGet, "/api/v1/stats", "").body), &st); err != nil {
				t.Fatal(err)
			}
			for _, b := range st.Frontends[0].Backends {
				if b.Name == tc.be && b.State != tc.wantState {
					t.Errorf("stats show %s in state %q, want %q", b.Name, b.State, tc.wantState)
				}
			}
		})
	}
}

func TestSetWeight(t *testing.T) {
	const path = "/api/v1/frontends/pg/backends/a/weight"
	tests := []struct {
		name, target, body string
		wantStatus         int
		wantBody           string
		wantWeight         int
	}{
		{"set", path, `{"weight":7}`, 200, `{"frontend":"pg","backend":"a","weight":7}`, 7},
		{"lowest", path, `{"weight":1}`, 200, `{"frontend":"pg","backend":"a","weight":1}`, 1},
		{"highest", path, `{"weight":256}`, 200, `{"frontend":"pg","backend":"a","weight":256}`, 256},
		{"zero", path, `{"weight":0}`, 400, `{"error":"field \"weight\": 0 is out of range 1..256"}`, 100},
		{"too high", path, `{"weight":257}`, 400, `{"error":"field \"weight\": 257 is out of range 1..256"}`, 100},
		{"missing", path, `{}`, 400, `{"error":"missing field \"weight\""}`, 100},
		{"string", path, `{"weight":"5"}`, 400, `{"error":"field \"weight\": want a int, got string"}`, 100},
		{"fraction", path, `{"weight":1.5}`, 400, `{"error":"field \"weight\": want a int, got number 1.5"}`, 100},
		{"not JSON", path, `weight=5`, 400, `{"error":"request body: invalid character 'w' looking for beginning of value"}`, 100},
		{"unknown backend", "/api/v1/frontends/pg/backends/b/weight", `{"weight":5}`, 404,
			`{"error":"frontend \"pg\" has no backend \"b\": not found"}`, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			h := newTestServer(src, Options{}).Handler()
			got := do(t, h, http.MethodPut, tc.target, tc.body)
			if got.status != tc.wantStatus || got.body != tc.wantBody+"\n" {
				t.Errorf("got %d %s, want %d %s", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
			if w := src.Stats().Frontends[0].Backends[0].Weight; w != tc.wantWeight {
				t.Errorf("weight afterwards %d, want %d", w, tc.wantWeight)
			}
		})
	}
}

func TestConnections(t *testing.T) {
	c3 := `{"id":3,"frontend":"pg","client":"127.0.0.1:40001","backend":"a","state":"relaying","age_seconds":1.5,"bytes_in":10,"bytes_out":20}`
	c5 := `{"id":5,"frontend":"cache","client":"127.0.0.1:40002","backend":"","state":"connecting","age_seconds":0.25,"bytes_in":0,"bytes_out":0}`
	c8 := `{"id":8,"frontend":"pg","client":"127.0.0.1:40003","backend":"a","state":"relaying","age_seconds":0.5,"bytes_in":30,"bytes_out":40}`
	c9 := `{"id":9,"frontend":"pg","client":"[::1]:40004","backend":"[::1]:5433","state":"closing","age_seconds":2,"bytes_in":50,"bytes_out":60}`
	tests := []struct {
		name, query string
		wantStatus  int
		wantBody    string
	}{
		{"all", "", 200, `{"connections":[` + c3 + `,` + c5 + `,` + c8 + `,` + c9 + `],"total":4,"next_after":0}`},
		{"first page", "?limit=2", 200, `{"connections":[` + c3 + `,` + c5 + `],"total":4,"next_after":5}`},
		{"second page", "?limit=2&after=5", 200, `{"connections":[` + c8 + `,` + c9 + `],"total":4,"next_after":0}`},
		{"past the end", "?after=9", 200, `{"connections":[],"total":4,"next_after":0}`},
		{"one frontend", "?frontend=pg&limit=1&after=3", 200, `{"connections":[` + c8 + `],"total":3,"next_after":8}`},
		{"limit clamped", "?limit=100000", 200, `{"connections":[` + c3 + `,` + c5 + `,` + c8 + `,` + c9 + `],"total":4,"next_after":0}`},
		{"unknown frontend", "?frontend=nope", 404, `{"error":"no frontend \"nope\": not found"}`},
		{"zero limit", "?limit=0", 400, `{"error":"parameter \"limit\": \"0\" is not a positive number"}`},
		{"bad limit", "?limit=x", 400, `{"error":"parameter \"limit\": \"x\" is not a positive number"}`},
		{"bad after", "?after=-1", 400, `{"error":"parameter \"after\": \"-1\" is not a connection ID"}`},
	}
	h := newTestServer(newFakeSource(), Options{}).Handler()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, h, http.MethodGet, "/api/v1/connections"+tc.query, "")
			if got.status != tc.wantStatus || got.body != tc.wantBody+"\n" {
				t.Errorf("got %d %s\nwant %d %s", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestCloseConnection(t *testing.T) {
	tests := []struct {
		name, id   string
		wantStatus int
		wantBody   string
		wantTotal  int
	}{
		{"live", "8", 204, "", 3},
		{"unknown", "7", 404, `{"error":"no connection 7: not found"}` + "\n", 4},
		{"not a number", "x", 400, `{"error":"connection ID \"x\" is not a number"}` + "\n", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			h := newTestServer(src, Options{}).Handler()
			got := do(t, h, http.MethodDelete, "/api/v1/connections/"+tc.id, "")
			if got.status != tc.wantStatus || got.body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
			if _, total, _ := src.Connections("", 0, 10); total != tc.wantTotal {
				t.Errorf("%d connections left, want %d", total, tc.wantTotal)
			}
		})
	}
}

func TestServeAndShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(newFakeSource(), Options{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("GET /healthz: %d %q %v", resp.StatusCode, body, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepts after Shutdown")
	}
}
