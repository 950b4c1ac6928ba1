package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/stats"
)

// contentType is the Prometheus text format, version 0.0.4.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// AppendText appends one snapshot's series in the Prometheus text format.
// It fails, appending nothing, on a label value that is not UTF-8 (a
// backend name), which a scraper would refuse.
func (c *Collector) AppendText(b []byte) ([]byte, error) {
	st := c.read()
	t := textSink{b: b}
	walk(&st, &t)
	if t.err != nil {
		return b, t.err
	}
	return t.b, nil
}

// textSink writes samples as text: a family's HELP and TYPE before its
// first sample, so a family without samples is left out as a registry
// would.
type textSink struct {
	b    []byte
	last *family
	err  error
}

// start writes f's header if f has not started yet, and the sample's name
// and labels: name{l1="a",l2="b"} (suffix after the name, le after the
// labels, for histograms).
func (t *textSink) start(f *family, suffix string, a, b, c string, le []byte) {
	if t.last != f {
		t.last = f
		t.b = append(t.b, "# HELP "...)
		t.b = append(t.b, f.name...)
		t.b = append(t.b, ' ')
		t.b = appendHelp(t.b, f.help)
		t.b = append(t.b, "\n# TYPE "...)
		t.b = append(t.b, f.name...)
		t.b = append(t.b, ' ')
		t.b = append(t.b, [...]string{counter: "counter", gauge: "gauge", histogram: "histogram"}[f.kind]...)
		t.b = append(t.b, '\n')
	}
	t.b = append(t.b, f.name...)
	t.b = append(t.b, suffix...)
	if len(f.labels) == 0 && le == nil {
		t.b = append(t.b, ' ')
		return
	}
	t.b = append(t.b, '{')
	vals := [3]string{a, b, c}
	for n, i := range f.order {
		if n > 0 {
			t.b = append(t.b, ',')
		}
		t.b = append(t.b, f.labels[i]...)
		t.b = append(t.b, '=', '"')
		t.b = t.appendLabelValue(vals[i])
		t.b = append(t.b, '"')
	}
	if le != nil {
		if len(f.labels) > 0 {
			t.b = append(t.b, ',')
		}
		t.b = append(t.b, `le="`...)
		t.b = append(t.b, le...)
		t.b = append(t.b, '"')
	}
	t.b = append(t.b, '}', ' ')
}

func (t *textSink) number(f *family, v float64, a, b, c string) {
	t.start(f, "", a, b, c, nil)
	t.b = appendFloat(t.b, v)
	t.b = append(t.b, '\n')
}

func (t *textSink) integer(f *family, v uint64, a, b, c string) {
	t.start(f, "", a, b, c, nil)
	t.b = strconv.AppendUint(t.b, v, 10)
	t.b = append(t.b, '\n')
}

func (t *textSink) histogram(f *family, count uint64, sum float64, buckets []stats.Bucket, a, b, c string) {
	var le [32]byte
	for _, bk := range buckets {
		t.start(f, "_bucket", a, b, c, appendFloat(le[:0], bk.UpperBound))
		t.b = strconv.AppendUint(t.b, bk.Count, 10)
		t.b = append(t.b, '\n')
	}
	t.start(f, "_bucket", a, b, c, append(le[:0], "+Inf"...))
	t.b = strconv.AppendUint(t.b, count, 10)
	t.b = append(t.b, '\n')
	t.start(f, "_sum", a, b, c, nil)
	t.b = appendFloat(t.b, sum)
	t.b = append(t.b, '\n')
	t.start(f, "_count", a, b, c, nil)
	t.b = strconv.AppendUint(t.b, count, 10)
	t.b = append(t.b, '\n')
}

// appendLabelValue appends v escaped as the text format wants (\\, \", \n),
// recording an error for a value that is not UTF-8.
func (t *textSink) appendLabelValue(v string) []byte {
	b := t.b
	if plain(v) {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			if c >= utf8.RuneSelf && t.err == nil && !utf8.ValidString(v) {
				t.err = fmt.Errorf("label value %q is not valid UTF-8", v)
			}
			b = append(b, c)
		}
	}
	return b
}

// plain reports whether v is ASCII without a byte to escape: most label
// values, appended as they are.
func plain(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= utf8.RuneSelf || c == '\\' || c == '"' || c == '\n' {
			return false
		}
	}
	return true
}

// appendHelp appends a help text escaped (\\ and \n).
func appendHelp(b []byte, h string) []byte {
	if !strings.ContainsAny(h, "\\\n") {
		return append(b, h...)
	}
	return append(b, strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(h)...)
}

// appendFloat formats v as the text format does: the shortest
// representation, and +Inf, -Inf, NaN spelled so.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 0:
		return append(b, '0')
	case v == 1:
		return append(b, '1')
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// Handler serves a scrape: c's series written straight from a snapshot,
// then what g gathers (the process and Go runtime collectors, the daemon's
// own metrics), in the text format, gzip-compressed when the client
// accepts it. A failed scrape answers 500 with the reason, and logs it.
func Handler(c *Collector, g prometheus.Gatherer, log zerolog.Logger) http.Handler {
	h := &handler{c: c, g: g, log: log}
	if g != nil {
		// The registry's part is written by client_golang's own handler,
		// asked for plain text without compression (no Accept and no
		// Accept-Encoding header), into the scrape's buffer.
		h.rest = promhttp.HandlerFor(g, promhttp.HandlerOpts{})
		h.restReq, _ = http.NewRequest(http.MethodGet, "/metrics", nil)
	}
	h.bufs.New = func() any { return new([]byte) }
	return h
}

type handler struct {
	c       *Collector
	g       prometheus.Gatherer
	rest    http.Handler // writes g's series; nil without g
	restReq *http.Request
	log     zerolog.Logger
	// bufs keeps scrape buffers, so that a scrape reuses the megabytes
	// the last one grew instead of growing them again; gzips keeps
	// compressors (each holds a few hundred KiB of tables).
	bufs  sync.Pool // *[]byte
	gzips sync.Pool // *gzip.Writer
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(p)
	b, err := h.write((*p)[:0])
	*p = b[:0]
	if err != nil {
		h.log.Error().Err(err).Msg("metrics scrape failed")
		http.Error(w, "scrape failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	if !acceptsGzip(r) {
		w.Write(b)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	// BestSpeed: the text of a thousand backends is megabytes, and what a
	// better level saves on the wire costs milliseconds per scrape here.
	gz := h.gzips.Get()
	var zw *gzip.Writer
	if gz == nil {
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
	} else {
		zw = gz.(*gzip.Writer)
		zw.Reset(w)
	}
	zw.Write(b)
	zw.Close()
	h.gzips.Put(zw)
}

// write appends a whole scrape to b.
func (h *handler) write(b []byte) ([]byte, error) {
	b, err := h.c.AppendText(b)
	if err != nil || h.rest == nil {
		return b, err
	}
	out := appendWriter{b: b}
	h.rest.ServeHTTP(&out, h.restReq)
	if out.code != 0 && out.code != http.StatusOK {
		return b, fmt.Errorf("gathering the process and Go series: %s", bytes.TrimSpace(out.b[len(b):]))
	}
	return out.b, nil
}

// appendWriter is the http.ResponseWriter the registry's handler writes
// into: its body is appended to b.
type appendWriter struct {
	b      []byte
	header http.Header
	code   int
}

func (w *appendWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *appendWriter) WriteHeader(code int) { w.code = code }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if enc, _, _ := strings.Cut(strings.TrimSpace(part), ";"); enc == "gzip" {
			return true
		}
	}
	return false
}
