package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/stats"
)

// fakeHistory answers with one sample per frontend of the fake source and
// remembers nothing; the real ring is tested in pkg/history.
type fakeHistory struct{}

func (fakeHistory) History(frontend string, seconds int) (stats.History, error) {
	if frontend != "" && frontend != "pg" && frontend != "cache" {
		return stats.History{}, fmt.Errorf("frontend %q: %w", frontend, ErrNotFound)
	}
	h := stats.History{Interval: 1, Times: []int64{int64(seconds)}}
	for _, name := range []string{"pg", "cache"} {
		if frontend == "" || frontend == name {
			h.Frontends = append(h.Frontends, stats.FrontendHistory{Name: name, Protocol: "tcp",
				Series: stats.Series{Conns: stats.Column{2.5}}, Backends: []stats.BackendHistory{}})
		}
	}
	return h, nil
}

// TestHistoryRoute checks the parameters of GET /api/v1/history: the
// window is clamped to what the daemon keeps, bad values are refused with
// the parameter named, and an unknown frontend is a 404.
func TestHistoryRoute(t *testing.T) {
	h := newTestServer(newFakeSource(), Options{History: fakeHistory{}}).Handler()
	tests := []struct {
		target string
		status int
		body   string
	}{
		{"/api/v1/history", 200, `{"interval_seconds":1,"times":[600],"from":0,"frontends":[` +
			`{"name":"pg","protocol":"tcp","series":{"start":0,"conns_per_second":[2.5],"bytes_in_per_second":[],"bytes_out_per_second":[],"active":[],"queued":[],"errors_per_second":null,"connect_p50_seconds":[],"connect_p99_seconds":[]},"backends":[]},` +
			`{"name":"cache","protocol":"tcp","series":{"start":0,"conns_per_second":[2.5],"bytes_in_per_second":[],"bytes_out_per_second":[],"active":[],"queued":[],"errors_per_second":null,"connect_p50_seconds":[],"connect_p99_seconds":[]},"backends":[]}]}`},
		{"/api/v1/history?frontend=cache&seconds=5", 200, `{"interval_seconds":1,"times":[5],"from":0,"frontends":[` +
			`{"name":"cache","protocol":"tcp","series":{"start":0,"conns_per_second":[2.5],"bytes_in_per_second":[],"bytes_out_per_second":[],"active":[],"queued":[],"errors_per_second":null,"connect_p50_seconds":[],"connect_p99_seconds":[]},"backends":[]}]}`},
		{"/api/v1/history?seconds=100000&frontend=pg", 200, ""},
		{"/api/v1/history?seconds=0", 400, `{"error":"parameter \"seconds\": \"0\" is not a positive number"}`},
		{"/api/v1/history?seconds=ten", 400, `{"error":"parameter \"seconds\": \"ten\" is not a positive number"}`},
		{"/api/v1/history?frontend=nope", 404, `{"error":"frontend \"nope\": not found"}`},
	}
	for _, tc := range tests {
		got := do(t, h, http.MethodGet, tc.target, "")
		if got.status != tc.status || tc.body != "" && got.body != tc.body+"\n" {
			t.Errorf("GET %s: %d %s, want %d %s", tc.target, got.status, got.body, tc.status, tc.body)
		}
	}
	if got := do(t, h, http.MethodGet, "/api/v1/history?seconds=100000&frontend=pg", ""); got.status != 200 ||
		!strings.Contains(got.body, `"times":[600]`) {
		t.Errorf("window not clamped to %d: %s", stats.HistorySeconds, got.body)
	}
	none := newTestServer(newFakeSource(), Options{}).Handler()
	if got := do(t, none, http.MethodGet, "/api/v1/history", ""); got.status != http.StatusNotImplemented {
		t.Errorf("without a history: %d %s", got.status, got.body)
	}
}

// TestClientHistory reads the history through the client as the CLI does.
func TestClientHistory(t *testing.T) {
	base := serveTCP(t, newTestServer(newFakeSource(), Options{History: fakeHistory{}}))
	c, err := NewClientWith(base, ClientOptions{Token: viewerToken})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.History(context.Background(), "pg", 30)
	if err != nil || len(h.Times) != 1 || h.Times[0] != 30 || len(h.Frontends) != 1 || h.Frontends[0].Series.Conns[0] != 2.5 {
		t.Errorf("%+v %v", h, err)
	}
	if _, err := c.History(context.Background(), "nope", 0); err == nil || err.Error() !=
		`admin GET /api/v1/history?frontend=nope: frontend "nope": not found (HTTP 404)` {
		t.Errorf("unknown frontend: %v", err)
	}
}
