package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/stats"
)

// manyBackends is testStats with n backends in its first frontend: text
// of many chunks of textChunk bytes.
func manyBackends(n int) stats.Stats {
	st := testStats()
	fe := &st.Frontends[0]
	proto := fe.Backends[0]
	fe.Backends = nil
	for i := range n {
		b := proto
		b.Name = fmt.Sprintf("10.1.%d.%d:5432", i/250, i%250)
		b.Total = uint64(i)
		fe.Backends = append(fe.Backends, b)
	}
	return st
}

// A compressed scrape, written to the compressor in chunks as the text is
// formatted, decompresses to exactly the plain scrape's bytes, scrape
// after scrape (the second reuses the first one's buffers), and says its
// length; a scrape that fails half-way (a label value that is not UTF-8
// past the first chunks) answers 500 with the reason, not a truncated 200.
func TestHandlerGzipChunks(t *testing.T) {
	reg := prometheus.NewRegistry()
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "extra_total", Help: "An extra counter."})
	extra.Add(7)
	reg.MustRegister(extra)
	st := manyBackends(300)
	h := Handler(NewCollector(func() stats.Stats { return st }), reg, zerolog.Nop())
	get := func(enc string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", enc)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for round := range 2 {
		plain := get("")
		if plain.Code != 200 || plain.Body.Len() < 4*textChunk || !strings.HasSuffix(plain.Body.String(), "extra_total 7\n") {
			t.Fatalf("round %d: plain scrape %d, %d bytes, want 200 and over %d bytes ending with the gatherer's series",
				round, plain.Code, plain.Body.Len(), 4*textChunk)
		}
		zipped := get("gzip")
		if zipped.Code != 200 || zipped.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("round %d: gzip scrape %d, encoding %q", round, zipped.Code, zipped.Header().Get("Content-Encoding"))
		}
		if got := zipped.Header().Get("Content-Length"); got != strconv.Itoa(zipped.Body.Len()) {
			t.Errorf("round %d: Content-Length %s, body %d bytes", round, got, zipped.Body.Len())
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped.Body.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		// Line by line: the causes of a backend come in map order.
		if got, want := sortedLines(text), sortedLines(plain.Body.Bytes()); got != want {
			t.Errorf("round %d: the compressed scrape (%d bytes of text) is not the plain one (%d bytes)", round, len(text), plain.Body.Len())
		}
	}
	st.Frontends[0].Backends[299].Name = "bad\xff"
	for _, enc := range []string{"", "gzip"} {
		w := get(enc)
		if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Encoding") != "" ||
			!strings.Contains(w.Body.String(), `label value "bad\xff" is not valid UTF-8`) {
			t.Errorf("Accept-Encoding %q, bad label: %d %q %.100q", enc, w.Code, w.Header().Get("Content-Encoding"), w.Body.String())
		}
	}
}

// sortedLines is text's lines in order.
func sortedLines(text []byte) string {
	lines := strings.Split(string(text), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// The registry's failure, compressed or not, is a 500 naming it.
func TestHandlerGatherFails(t *testing.T) {
	st := testStats()
	h := Handler(NewCollector(func() stats.Stats { return st }), failingGatherer{}, zerolog.Nop())
	for _, enc := range []string{"", "gzip"} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", enc)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusInternalServerError ||
			!strings.Contains(w.Body.String(), "gathering the process and Go series: ") ||
			!strings.Contains(w.Body.String(), "the gatherer broke") {
			t.Errorf("Accept-Encoding %q: %d %q", enc, w.Code, w.Body.String())
		}
	}
}

type failingGatherer struct{}

func (failingGatherer) Gather() ([]*dto.MetricFamily, error) {
	return nil, fmt.Errorf("the gatherer broke")
}
