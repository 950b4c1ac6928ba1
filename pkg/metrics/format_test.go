package metrics

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/stats"
)

// TestTextFormatSpellings: values and help texts are written as the
// Prometheus text format spells them: +Inf, -Inf and NaN, and a help text
// with its backslashes and newlines escaped.
func TestTextFormatSpellings(t *testing.T) {
	for v, want := range map[float64]string{
		math.Inf(1): "+Inf", math.Inf(-1): "-Inf", 0: "0", 1: "1", 0.25: "0.25", 1e21: "1e+21",
	} {
		if got := string(appendFloat(nil, v)); got != want {
			t.Errorf("appendFloat(%v) = %q, want %q", v, got, want)
		}
	}
	if got := string(appendFloat(nil, math.NaN())); got != "NaN" {
		t.Errorf("appendFloat(NaN) = %q", got)
	}
	if got, want := string(appendHelp(nil, "a\\b\nc")), `a\\b\nc`; got != want {
		t.Errorf("appendHelp = %q, want %q", got, want)
	}
}

// TestHandlerGathererFails: when the process and Go series cannot be
// gathered, the scrape fails whole with the gatherer's reason, rather
// than serving splicer's series without them.
func TestHandlerGathererFails(t *testing.T) {
	st := testStats()
	broken := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, errors.New("no /proc") })
	h := Handler(NewCollector(func() stats.Stats { return st }), broken, zerolog.Nop())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	want := "scrape failed: gathering the process and Go series: An error has occurred while serving metrics:\n\nno /proc\n"
	if w.Code != http.StatusInternalServerError || w.Body.String() != want {
		t.Fatalf("scrape = %d %q, want 500 %q", w.Code, w.Body.String(), want)
	}
}
