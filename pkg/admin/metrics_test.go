package admin

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/metrics"
)

// TestMetricsFollowRuntimeChanges checks /metrics end to end: the server
// serves the registry it was given, and a weight or state set through the
// API shows in the very next scrape.
func TestMetricsFollowRuntimeChanges(t *testing.T) {
	src := newFakeSource()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(src.Stats))
	h := New(src, reg, zerolog.Nop(), Options{Security: newTestSecurity()}).Handler()

	scrape := func() string {
		t.Helper()
		got := do(t, h, http.MethodGet, "/metrics", "")
		if got.status != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", got.status, got.body)
		}
		return got.body
	}
	tests := []struct {
		name, method, target, body string
		wantLines                  []string
	}{
		{"before", "", "", "", []string{
			`splicer_backend_weight{backend="a",frontend="pg"} 100`,
			`splicer_backend_state{backend="a",frontend="pg",state="ready"} 1`,
			`splicer_backend_bytes_total{backend="a",direction="in",frontend="pg"} 700`,
		}},
		{"weight", http.MethodPut, "/api/v1/frontends/pg/backends/a/weight", `{"weight":7}`, []string{
			`splicer_backend_weight{backend="a",frontend="pg"} 7`,
		}},
		{"drain", http.MethodPost, "/api/v1/frontends/pg/backends/a/state", `{"state":"drain"}`, []string{
			`splicer_backend_state{backend="a",frontend="pg",state="drain"} 1`,
			`splicer_backend_state{backend="a",frontend="pg",state="ready"} 0`,
		}},
	}
	for _, tc := range tests {
		if tc.method != "" {
			if got := do(t, h, tc.method, tc.target, tc.body); got.status != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.name, got.status, got.body)
			}
		}
		lines := strings.Split(scrape(), "\n")
		for _, want := range tc.wantLines {
			if !slices.Contains(lines, want) {
				t.Errorf("%s: scrape lacks %q", tc.name, want)
			}
		}
	}
}

func BenchmarkStatsJSON(b *testing.B) {
	h := newTestServer(newFakeSource(), Options{}).Handler()
	b.ReportAllocs()
	for b.Loop() {
		if got := do(b, h, http.MethodGet, "/api/v1/stats", ""); got.status != http.StatusOK {
			b.Fatal(got.status)
		}
	}
}
