package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/splicerlb/splicer/pkg/stats"
)

// probeNames are the series of a backend's active health probes.
var probeNames = []string{
	"splicer_backend_health_probes_skipped_total",
	"splicer_backend_health_probe_connections_total",
}

// TestCollectorProbeSeries: a backend with active probes carries the two
// probe counters; one without (check "none", or no checks) carries none.
func TestCollectorProbeSeries(t *testing.T) {
	const want = `
# HELP splicer_backend_health_probes_skipped_total Probe times skipped because the backend's traffic had proved it since the previous one (probe_when_idle_only).
# TYPE splicer_backend_health_probes_skipped_total counter
splicer_backend_health_probes_skipped_total{backend="127.0.0.1:5432",frontend="pg"} 108
# HELP splicer_backend_health_probe_connections_total Connections the health probes opened to the backend; with http keep-alive, fewer than the probes run.
# TYPE splicer_backend_health_probe_connections_total counter
splicer_backend_health_probe_connections_total{backend="127.0.0.1:5432",frontend="pg"} 1
`
	probed := testStats()
	probed.Frontends[0].Backends[0].Health.Probes = &stats.ProbeStats{Skipped: 108, Connections: 1}
	for _, tc := range []struct {
		name string
		st   stats.Stats
		want string
	}{
		{"probed", probed, want},
		{"not probed", testStats(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCollector(func() stats.Stats { return tc.st })
			if err := testutil.CollectAndCompare(c, strings.NewReader(tc.want), probeNames...); err != nil {
				t.Error(err)
			}
			problems, err := testutil.CollectAndLint(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("promlint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}
