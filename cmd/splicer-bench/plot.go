package main

import (
	"errors"
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The plots, drawn from a results file as plain SVG: no dependency, and a
// diff of the file shows what changed. docs/benchmarks.md shows them.
const (
	plotSideBySide = "side-by-side.svg"
	plotRequests   = "growth-requests.svg"
	plotIdle       = "growth-idle.svg"
	plotPick       = "growth-pick.svg"
)

// sideBySideKeys are the rows of the side-by-side chart: the figures the
// performance goals are stated on.
var sideBySideKeys = []string{
	"iperf1_gbps", "iperf1_cpu_per_gbit", "conn_rate", "conn_cpu_per_1000",
	"req_rate", "req_cpu_per_100k", "req_p99_us", "udp_req_rate", "udp_req_cpu_per_100k",
	"redis_set_rate", "redis_get_rate", "redis_cpu_us", "pgbench_tps", "pgbench_cpu_us",
	"idle_rss_kib", "health_cpu_us_per_check",
}

// targetColours gives each column its colour in every chart.
var targetColours = map[string]string{
	targetDirect: "#8c8c8c", targetSplicer: "#1f62b4", targetHAProxy: "#e07b12",
	targetNginx: "#2e9a3e", targetIOCopy: "#8e4bb0",
}

// seriesColours colour the series without a target colour (strategies).
var seriesColours = []string{"#1f62b4", "#e07b12", "#2e9a3e", "#c0392b", "#8e4bb0", "#6b6b6b"}

// runPlot is the "plot -json FILE -svg DIR [-gobench FILE]" subcommand.
func runPlot(args []string) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	in := fs.String("json", "", "results `file` written by -json")
	dir := fs.String("svg", "", "`directory` to write the plots to")
	gobench := fs.String("gobench", "", "take the Pick costs from this `go test -bench` output instead of the results file's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *dir == "" {
		return errors.New("plot: -json and -svg are required")
	}
	if *gobench == "" {
		return plotFile(*in, *dir)
	}
	f, err := readResultsFile(*in)
	if err != nil {
		return err
	}
	if f.Pick, err = readPickBench(*gobench); err != nil {
		return err
	}
	return writePlots(f, *dir)
}

// plotFile draws every plot from the results file at path into dir.
func plotFile(path, dir string) error {
	f, err := readResultsFile(path)
	if err != nil {
		return err
	}
	return writePlots(f, dir)
}

// writePlots writes the charts the results hold data for.
func writePlots(f *resultsFile, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	charts := map[string]string{
		plotSideBySide: sideBySideSVG(f),
		plotRequests:   requestsSVG(f),
		plotIdle:       idleSVG(f),
		plotPick:       pickSVG(f),
	}
	for name, svg := range charts {
		if svg == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(svg), 0o644); err != nil {
			return fmt.Errorf("write plot: %w", err)
		}
	}
	return nil
}

// row returns the results row of key, nil when the run has none.
func (f *resultsFile) row(key string) *resultRow {
	for i := range f.Rows {
		if f.Rows[i].Key == key {
			return &f.Rows[i]
		}
	}
	return nil
}

// median is the target's median in the row of key.
func (f *resultsFile) median(key, target string) (float64, bool) {
	r := f.row(key)
	if r == nil {
		return 0, false
	}
	v, ok := r.Values[target]
	if !ok || v.Median == nil {
		return 0, false
	}
	return *v.Median, true
}

// subtitle says which run a chart shows, cut to fit a chart's width.
func (f *resultsFile) subtitle() string {
	s := fmt.Sprintf("%s · Linux %s · %d cores · splicer-bench %s", f.Date, f.Kernel, f.Cores, strings.Join(f.Command, " "))
	if r := []rune(s); len(r) > 130 {
		s = string(r[:129]) + "…"
	}
	return s
}

// number writes a value for a chart: whole numbers from 1000 up, four
// significant digits below.
func number(v float64) string {
	if math.Abs(v) >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// svgDoc collects the elements of one SVG document.
type svgDoc struct {
	b    strings.Builder
	w, h int
}

func (d *svgDoc) add(format string, args ...any) { fmt.Fprintf(&d.b, format+"\n", args...) }

// text adds an escaped text element.
func (d *svgDoc) text(x, y float64, anchor, extra, s string) {
	d.add(`<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>`, x, y, anchor, extra, html.EscapeString(s))
}

// String is the finished document.
func (d *svgDoc) String() string {
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
%s</svg>
`, d.w, d.h, d.w, d.h, d.b.String())
}

// sideBySideSVG draws one group of bars per row of sideBySideKeys, a bar
// per target scaled to the row's largest value, with the value written
// beside it and which way is better in the row's title.
func sideBySideSVG(f *resultsFile) string {
	const (
		width, left, barMax, barH, titleH, gap = 900, 80, 640, 14, 20, 12
	)
	var rows []*resultRow
	for _, k := range sideBySideKeys {
		if r := f.row(k); r != nil && len(r.Values) > 0 {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return ""
	}
	d := &svgDoc{w: width}
	d.text(10, 22, "start", `font-size="16" font-weight="bold"`, "splicer side by side (medians)")
	d.text(10, 40, "start", `fill="#555" font-size="10"`, f.subtitle())
	y := 60.0
	for _, r := range rows {
		better := "higher is better"
		if r.LowerBetter {
			better = "lower is better"
		}
		d.text(10, y+14, "start", `font-weight="bold"`, r.Label+" · "+better)
		y += titleH
		var top float64
		for _, c := range f.Columns {
			if v, ok := r.Values[c]; ok && v.Median != nil {
				top = max(top, *v.Median)
			}
		}
		for _, c := range f.Columns {
			v, ok := r.Values[c]
			if !ok {
				continue
			}
			d.text(left-6, y+barH-3, "end", "", c)
			if v.Median == nil {
				d.text(left+4, y+barH-3, "start", `fill="#c0392b"`, "failed")
				y += barH + 2
				continue
			}
			w := 0.0
			if top > 0 {
				w = *v.Median / top * barMax
			}
			d.add(`<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"/>`, left, y, w, barH, targetColours[c])
			d.text(float64(left)+w+4, y+barH-3, "start", "", number(*v.Median))
			y += barH + 2
		}
		y += gap
	}
	d.h = int(y) + 10
	return d.String()
}

// series is one line of a line chart: y by x.
type series struct {
	name, colour string
	points       map[float64]float64
}

// lineChart draws series over a logarithmic x axis (the counts span
// orders of magnitude) and a y axis from 0, or logarithmic with logY (for
// costs that span orders of magnitude too).
func lineChart(title, sub, xLabel, yLabel string, ss []series, logY bool) string {
	const (
		width, height, left, right, top, bottom = 760, 430, 80, 150, 72, 50
	)
	var xs []float64
	yMax, yMin := 0.0, math.Inf(1)
	for _, s := range ss {
		for x, y := range s.points {
			if !slices.Contains(xs, x) {
				xs = append(xs, x)
			}
			yMax = max(yMax, y)
			yMin = min(yMin, y)
		}
	}
	if len(xs) == 0 || yMax <= 0 || logY && yMin <= 0 {
		return ""
	}
	slices.Sort(xs)
	lo, hi := math.Log10(xs[0]), math.Log10(xs[len(xs)-1])
	if hi == lo {
		lo, hi = lo-0.5, hi+0.5
	}
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	px := func(x float64) float64 { return left + (math.Log10(x)-lo)/(hi-lo)*plotW }
	step := niceStep(yMax / 5)
	yTop := math.Ceil(yMax*1.05/step) * step
	py := func(y float64) float64 { return top + plotH - y/yTop*plotH }
	var yTicks []float64
	for y := 0.0; y <= yTop+step/2; y += step {
		yTicks = append(yTicks, y)
	}
	if logY {
		bottomDecade, topDecade := math.Floor(math.Log10(yMin)), math.Ceil(math.Log10(yMax))
		if topDecade == bottomDecade {
			topDecade++
		}
		py = func(y float64) float64 {
			return top + plotH - (math.Log10(y)-bottomDecade)/(topDecade-bottomDecade)*plotH
		}
		yTicks = nil
		for e := bottomDecade; e <= topDecade; e++ {
			yTicks = append(yTicks, math.Pow(10, e))
		}
	}

	d := &svgDoc{w: width, h: height}
	d.text(10, 22, "start", `font-size="16" font-weight="bold"`, title)
	for i, line := range strings.Split(sub, "\n") {
		d.text(10, float64(40+13*i), "start", `fill="#555" font-size="10"`, line)
	}
	for _, y := range yTicks {
		d.add(`<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, py(y), left+plotW, py(y))
		d.text(left-6, py(y)+4, "end", "", number(y))
	}
	for _, x := range xs {
		d.add(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, px(x), top, px(x), top+plotH)
		d.text(px(x), top+plotH+16, "middle", "", strconv.FormatFloat(x, 'f', -1, 64))
	}
	d.add(`<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`, left, top, plotW, plotH)
	d.text(left+plotW/2, height-10, "middle", "", xLabel)
	d.text(14, top+plotH/2, "middle", fmt.Sprintf(`transform="rotate(-90 14 %.1f)"`, top+plotH/2), yLabel)
	for i, s := range ss {
		var pts []string
		var sx []float64
		for x := range s.points {
			sx = append(sx, x)
		}
		slices.Sort(sx)
		for _, x := range sx {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(s.points[x])))
			d.add(`<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, px(x), py(s.points[x]), s.colour)
		}
		d.add(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), s.colour)
		ly := float64(top + 10 + 18*i)
		d.add(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`, left+plotW+12, ly, left+plotW+32, ly, s.colour)
		d.text(left+plotW+38, ly+4, "start", "", s.name)
	}
	return d.String()
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// requestsSVG plots the proxy CPU per request against the number of
// connections sharing the same offered rate, a line per proxy.
func requestsSVG(f *resultsFile) string {
	counts := []struct {
		key string
		n   float64
	}{{"growth_cpu_us_16", 16}, {"growth_cpu_us_256", 256}, {"growth_cpu_us_4096", 4096}}
	var ss []series
	for _, c := range f.Columns {
		s := series{name: c, colour: targetColours[c], points: map[float64]float64{}}
		for _, k := range counts {
			if v, ok := f.median(k.key, c); ok {
				s.points[k.n] = v
			}
		}
		if len(s.points) > 0 {
			ss = append(ss, s)
		}
	}
	return lineChart("Proxy CPU per request as connections grow",
		fmt.Sprintf("%d req/s of 64 B ping-pong spread over the connections\n%s", growthRate, f.subtitle()),
		"concurrent connections (log scale)", "proxy CPU per request (µs)", ss, false)
}

// idleSVG plots the proxy's RSS per idle connection at the two counts
// held, a line per proxy.
func idleSVG(f *resultsFile) string {
	var ss []series
	for _, c := range f.Columns {
		s := series{name: c, colour: targetColours[c], points: map[float64]float64{}}
		if v, ok := f.median("idle1k_rss_kib", c); ok {
			s.points[idleFew] = v
		}
		held, okHeld := f.median("idle_held", c)
		if v, ok := f.median("idle_rss_kib", c); ok && okHeld && held > 0 {
			s.points[math.Round(held)] = v
		}
		if len(s.points) > 0 {
			ss = append(ss, s)
		}
	}
	return lineChart("Proxy memory per idle connection as connections grow",
		"RSS growth over the connections held, each having echoed one byte\n"+f.subtitle(),
		"idle connections held (log scale)", "proxy RSS per connection (KiB)", ss, false)
}

// pickSVG plots the serial cost of one Pick per strategy against the
// number of backends, from BenchmarkPick.
func pickSVG(f *resultsFile) string {
	var ss []series
	for _, p := range f.Pick {
		if p.Mode != "serial" {
			continue
		}
		i := slices.IndexFunc(ss, func(s series) bool { return s.name == p.Strategy })
		if i < 0 {
			ss = append(ss, series{name: p.Strategy, colour: seriesColours[len(ss)%len(seriesColours)], points: map[float64]float64{}})
			i = len(ss) - 1
		}
		ss[i].points[float64(p.Backends)] = p.NsPerOp
	}
	return lineChart("Cost of one Pick per strategy as backends grow",
		"BenchmarkPick (pkg/balance), one goroutine, mixed weights; nginx-mutex is nginx's smooth WRR under a lock, for reference",
		"backends (log scale)", "ns per pick (log scale)", ss, true)
}
