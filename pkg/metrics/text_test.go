package metrics

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/stats"
)

// parseText parses a text exposition into families.
func parseText(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("the text does not parse: %v\n%s", err, text)
	}
	return mfs
}

// canonical renders families sorted, one sample a line, for comparison.
func canonical(mfs []*dto.MetricFamily) string {
	var lines []string
	for _, mf := range mfs {
		var buf bytes.Buffer
		expfmt.MetricFamilyToText(&buf, sortedFamily(mf))
		lines = append(lines, buf.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// sortedFamily returns mf with its label pairs and metrics in order.
func sortedFamily(mf *dto.MetricFamily) *dto.MetricFamily {
	for _, m := range mf.Metric {
		slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	}
	key := func(m *dto.Metric) string {
		var s []string
		for _, l := range m.Label {
			s = append(s, l.GetName()+"="+l.GetValue())
		}
		return strings.Join(s, ",")
	}
	slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(key(a), key(b)) })
	return mf
}

// The text the scrape writes is, family by family and sample by sample,
// what the Collector gives a registry: one description, two encodings.
func TestTextMatchesCollector(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			c := NewCollector(fx.read)
			text, err := c.AppendText(nil)
			if err != nil {
				t.Fatal(err)
			}
			var fromText []*dto.MetricFamily
			for _, mf := range parseText(t, text) {
				fromText = append(fromText, mf)
			}
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(c)
			gathered, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := canonical(fromText), canonical(gathered); got != want {
				t.Errorf("text:\n%s\nregistry:\n%s", got, want)
			}
			problems, err := promlint.NewWithMetricFamilies(fromText).Lint()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("promlint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// Label values are escaped as the format wants; a value that is not UTF-8
// fails the scrape, naming it.
func TestTextEscapesAndRefuses(t *testing.T) {
	st := testStats()
	st.Frontends[0].Backends[0].Name = "db \"one\"\\\n\u00e9"
	text, err := NewCollector(func() stats.Stats { return st }).AppendText(nil)
	if err != nil {
		t.Fatal(err)
	}
	mfs := parseText(t, text)
	var got string
	for _, l := range mfs["splicer_backend_up"].Metric[0].Label {
		if l.GetName() == "backend" {
			got = l.GetValue()
		}
	}
	if got != st.Frontends[0].Backends[0].Name {
		t.Errorf("backend label %q, want %q", got, st.Frontends[0].Backends[0].Name)
	}
	st.Frontends[0].Backends[0].Name = "bad\xff"
	if _, err := NewCollector(func() stats.Stats { return st }).AppendText(nil); err == nil ||
		!strings.Contains(err.Error(), `label value "bad\xff" is not valid UTF-8`) {
		t.Errorf("error %v, want one naming the bad value", err)
	}
}

// The handler serves splicer's series and the gatherer's, compressed when
// asked, and a failed scrape as a 500 with the reason.
func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "extra_total", Help: "An extra counter."})
	extra.Add(3)
	reg.MustRegister(extra)
	st := testStats()
	h := Handler(NewCollector(func() stats.Stats { return st }), reg, zerolog.Nop())
	for _, enc := range []string{"", "gzip", "deflate, gzip;q=0.5"} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", enc)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		body := w.Body.Bytes()
		if w.Header().Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(zr)
		} else if enc != "" {
			t.Errorf("Accept-Encoding %q: not compressed", enc)
		}
		mfs := parseText(t, body)
		if w.Code != 200 || w.Header().Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" ||
			mfs["extra_total"].GetMetric()[0].GetCounter().GetValue() != 3 || mfs["splicer_backend_up"] == nil {
			t.Errorf("Accept-Encoding %q: %d %q, families %d", enc, w.Code, w.Header().Get("Content-Type"), len(mfs))
		}
	}
	st.Frontends[0].Backends[0].Name = "bad\xff"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "not valid UTF-8") {
		t.Errorf("bad label: %d %q", w.Code, w.Body.String())
	}
}

// BenchmarkAppendText writes the series of 1000 backends over 10
// frontends from a snapshot (the snapshot itself is built by the daemon;
// pkg/daemon's BenchmarkScrape measures the whole scrape).
func BenchmarkAppendText(b *testing.B) {
	st := testStats()
	proto := st.Frontends[0]
	be := proto.Backends[0]
	st.Frontends = nil
	for f := range 10 {
		fe := proto
		fe.Name = "fe" + string(rune('0'+f))
		fe.Backends = nil
		for i := range 100 {
			be.Name = "10.0." + string(rune('0'+f)) + "." + string(rune('a'+i%26)) + string(rune('a'+i/26))
			fe.Backends = append(fe.Backends, be)
		}
		st.Frontends = append(st.Frontends, fe)
	}
	c := NewCollector(func() stats.Stats { return st })
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.AppendText(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/scrape")
}
