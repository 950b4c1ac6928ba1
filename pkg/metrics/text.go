package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
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

// writeText writes one snapshot's series to w in chunks of about
// textChunk bytes, formatted in buf (its capacity reused), so that the
// megabytes of a large scrape go through a buffer that stays in the CPU's
// cache. It stops at the first label value that is not UTF-8, or the
// first error of w. It returns buf for the next scrape.
func (c *Collector) writeText(w io.Writer, buf []byte) ([]byte, error) {
	st := c.read()
	t := textSink{b: buf[:0], out: w}
	walk(&st, &t)
	if t.err == nil && len(t.b) > 0 {
		_, t.err = w.Write(t.b)
	}
	return t.b[:0], t.err
}

// textChunk is how much text writeText formats before it writes it out.
const textChunk = 64 << 10

// textSink writes samples as text: a family's HELP and TYPE before its
// first sample, so a family without samples is left out as a registry
// would. With out set, it writes b to out and empties it whenever b has
// grown past textChunk, at the start of a line.
type textSink struct {
	b    []byte
	out  io.Writer
	last *family
	err  error
	line int // where the line start began in b
	// les are the upper bounds of the last histogram written, and lesText
	// their text, for the next histogram of the same bounds (every series
	// of a family shares them).
	les     []float64
	lesText [][]byte
}

// flush writes what b holds to out, once b has grown past textChunk.
func (t *textSink) flush() {
	if t.out == nil || len(t.b) < textChunk || t.err != nil {
		return
	}
	_, t.err = t.out.Write(t.b)
	t.b = t.b[:0]
}

// start writes f's header if f has not started yet, and the sample's name
// and labels: name{l1="a",l2="b"} (suffix after the name, le after the
// labels, for histograms).
func (t *textSink) start(f *family, suffix string, a, b, c string, le []byte) {
	t.flush()
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
	t.line = len(t.b)
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
	// The buckets' lines differ only in le and the count: the name and
	// labels are formatted once, name_bucket{labels,le=" then copied.
	t.start(f, "_bucket", a, b, c, nil)
	if len(f.labels) == 0 {
		t.b = append(t.b[:len(t.b)-1], '{') // "name_bucket "
	} else {
		t.b = append(t.b[:len(t.b)-2], ',') // "name_bucket{...} "
	}
	t.b = append(t.b, `le="`...)
	line, n := t.line, len(t.b)-t.line
	for i, bk := range buckets {
		if i > 0 {
			t.b = append(t.b, t.b[line:line+n]...)
		}
		t.b = append(t.b, t.le(i, bk.UpperBound)...)
		t.b = append(t.b, '"', '}', ' ')
		t.b = strconv.AppendUint(t.b, bk.Count, 10)
		t.b = append(t.b, '\n')
	}
	if len(buckets) > 0 {
		t.b = append(t.b, t.b[line:line+n]...)
	}
	t.b = append(t.b, `+Inf"} `...)
	t.b = strconv.AppendUint(t.b, count, 10)
	t.b = append(t.b, '\n')
	t.start(f, "_sum", a, b, c, nil)
	t.b = appendFloat(t.b, sum)
	t.b = append(t.b, '\n')
	t.start(f, "_count", a, b, c, nil)
	t.b = strconv.AppendUint(t.b, count, 10)
	t.b = append(t.b, '\n')
}

// le returns the text of the i-th upper bound v, formatted once per
// family of histograms rather than once per series.
func (t *textSink) le(i int, v float64) []byte {
	if i < len(t.les) && t.les[i] == v {
		return t.lesText[i]
	}
	if i < len(t.les) {
		t.les, t.lesText = t.les[:i], t.lesText[:i]
	}
	t.les = append(t.les, v)
	t.lesText = append(t.lesText, appendFloat(nil, v))
	return t.lesText[i]
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
	return h
}

type handler struct {
	c       *Collector
	g       prometheus.Gatherer
	rest    http.Handler // writes g's series; nil without g
	restReq *http.Request
	log     zerolog.Logger
	// spare is the last scrape's buffers, taken by the next scrape so
	// that it reuses the megabytes the last one grew instead of growing
	// them again (a sync.Pool would drop them at every GC, and a large
	// scrape allocates enough to cause one). A scrape that finds it
	// taken, by a scrape running at the same time, makes its own.
	spare atomic.Pointer[scratch]
}

// scratch is what one scrape writes into.
type scratch struct {
	text []byte       // the uncompressed text, or a chunk of it
	zbuf bytes.Buffer // the compressed scrape
	zw   *gzip.Writer // compresses into zbuf
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.spare.Swap(nil)
	if s == nil {
		s = new(scratch)
	}
	defer h.spare.Store(s)
	var body []byte
	var err error
	gz := acceptsGzip(r)
	if gz {
		body, err = h.compress(s)
	} else {
		s.text, err = h.write(s.text[:0])
		body = s.text
		s.text = s.text[:0]
	}
	if err != nil {
		h.log.Error().Err(err).Msg("metrics scrape failed")
		http.Error(w, "scrape failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if gz {
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Write(body)
}

// compress writes a whole scrape into s.zbuf, gzip-compressed, and
// returns it. The text goes through the compressor in chunks of
// textChunk bytes and is never whole in memory: megabytes written and read
// again cost more than the chunks that stay in the CPU's cache. BestSpeed:
// the text of a thousand backends is megabytes, and what a better level
// saves on the wire costs milliseconds per scrape here.
func (h *handler) compress(s *scratch) ([]byte, error) {
	s.zbuf.Reset()
	if s.zw == nil {
		s.zw, _ = gzip.NewWriterLevel(&s.zbuf, gzip.BestSpeed)
	} else {
		s.zw.Reset(&s.zbuf)
	}
	text, err := h.c.writeText(s.zw, s.text)
	s.text = text
	if err == nil && h.rest != nil {
		out := appendWriter{b: s.text[:0], out: s.zw}
		h.rest.ServeHTTP(&out, h.restReq)
		err = out.err()
		s.text = out.b[:0]
	}
	if err == nil {
		err = s.zw.Close()
	}
	return s.zbuf.Bytes(), err
}

// write appends a whole scrape to b.
func (h *handler) write(b []byte) ([]byte, error) {
	b, err := h.c.AppendText(b)
	if err != nil || h.rest == nil {
		return b, err
	}
	out := appendWriter{b: b}
	h.rest.ServeHTTP(&out, h.restReq)
	if err := out.err(); err != nil {
		return b, err
	}
	return out.b, nil
}

// appendWriter is the http.ResponseWriter the registry's handler writes
// into: its body is appended to b, or, with out set, written to out (an
// error's body, the status other than 200, is kept in b).
type appendWriter struct {
	b      []byte
	out    io.Writer
	start  int // where the body began in b
	header http.Header
	code   int
}

func (w *appendWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *appendWriter) WriteHeader(code int) {
	w.code = code
	w.start = len(w.b)
}

func (w *appendWriter) Write(p []byte) (int, error) {
	if w.out != nil && (w.code == 0 || w.code == http.StatusOK) {
		return w.out.Write(p)
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// err is the registry handler's failure, with the text it answered.
func (w *appendWriter) err() error {
	if w.code != 0 && w.code != http.StatusOK {
		return fmt.Errorf("gathering the process and Go series: %s", bytes.TrimSpace(w.b[w.start:]))
	}
	return nil
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
