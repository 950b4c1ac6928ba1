package daemon

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// scrapeDaemon runs a daemon of frontends frontends with backends backends
// each, health checked every hour (so the health series are there and
// almost no probe runs), and returns the handler serving its metrics as
// the admin port does. The backends are loopback addresses nothing
// listens on.
func scrapeDaemon(tb testing.TB, frontends, backends int) http.Handler {
	tb.Helper()
	b := config.New().AdminListen("").StateFile("").RuntimeDir(tb.TempDir())
	var fb *config.FrontendBuilder
	for f := range frontends {
		fb = b.Frontend(fmt.Sprintf("fe%d", f)).Listen("127.0.0.1:0").
			HealthCheck(config.CheckTCP).HealthInterval(time.Hour)
		for i := range backends {
			fb = fb.Backend(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(1 + f), byte(i / 250), byte(1 + i%250)}), 9).String(), 1)
		}
	}
	cfg, err := fb.Build()
	if err != nil {
		tb.Fatal(err)
	}
	d := runWith(tb, cfg, Options{})
	testutil.WaitFor(tb, 5*time.Second, "the checks running", func() bool { return d.checks.scheduler("fe0") != nil })
	return d.metricsHandler(zerolog.Nop())
}

// BenchmarkScrape is one scrape of /metrics with 1000 backends over 10
// frontends: the stats snapshot read from the counters, the text written
// from it, the process and Go collectors; plain, and gzip-compressed as
// Prometheus asks for it.
func BenchmarkScrape(b *testing.B) {
	h := scrapeDaemon(b, 10, 100)
	// The first scrapes run while the daemon is still starting (a
	// thousand backends' first checks): hundreds of ms that would be the
	// first sub-benchmark's only iteration.
	for range 5 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/metrics", nil))
	}
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", enc)
			w := &countingWriter{header: http.Header{}}
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				w.n = 0
				h.ServeHTTP(w, req)
				if w.code != 0 {
					b.Fatal(w.code)
				}
			}
			// CPU time (all threads: the scrape, the GC it causes) per
			// scrape is the cost; ns/op, wall time, grows with whatever
			// else the machine runs.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
			b.ReportMetric(float64(w.n), "bytes/scrape")
		})
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingWriter is a ResponseWriter that counts what a socket would send.
type countingWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countingWriter) Header() http.Header         { return w.header }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// The daemon's whole scrape: splicer's series beside the process and Go
// runtime collectors and the reload metrics, promlint clean, without the
// home-made duplicates of what process_* says.
func TestScrape(t *testing.T) {
	h := scrapeDaemon(t, 2, 2)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("%d: %s", w.Code, w.Body.String())
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	var list []*dto.MetricFamily
	for _, mf := range mfs {
		list = append(list, mf)
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{"process_open_fds", "process_start_time_seconds", "process_cpu_seconds_total",
		"go_goroutines", "splicer_config_reloads_total", "splicer_backend_health_checks_total",
		"splicer_backend_health_check_seconds", "splicer_backend_health_transitions_total"} {
		if mfs[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	for _, name := range []string{"splicer_open_fds", "splicer_uptime_seconds", "splicer_frontend_connections_rejected_total",
		"splicer_frontend_refused_total", "splicer_backend_resets_total"} {
		if mfs[name] != nil {
			t.Errorf("%s is still served", name)
		}
	}
	labels := map[string]string{}
	for _, l := range mfs["splicer_build_info"].GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["goversion"] != runtime.Version() || len(labels) != 3 {
		t.Errorf("splicer_build_info labels %v", labels)
	}
}

// A scrape's allocations are bounded by the config's size: a handful of
// maps and slices per backend for the snapshot, the text written into a
// buffer the last scrape left.
func TestScrapeAllocationsBounded(t *testing.T) {
	h := scrapeDaemon(t, 10, 100)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	w := &countingWriter{header: http.Header{}}
	allocs := testing.AllocsPerRun(3, func() { h.ServeHTTP(w, req) })
	if w.code != 0 || allocs > 16*1000 {
		t.Errorf("status %d; a scrape of 1000 backends allocates %.0f times, want at most 16 per backend", w.code, allocs)
	}
	t.Logf("%.0f allocations per scrape of 1000 backends", allocs)
}
