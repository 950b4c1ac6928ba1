package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/splicerlb/splicer/pkg/stats"
)

// protocolUDP is FrontendStats.Protocol of a UDP frontend. Only such
// frontends carry the datagram series, so a TCP-only deployment scrapes no
// series it did not have before UDP existed.
const protocolUDP = "udp"

// Collector is splicer's series as a prometheus.Collector over a stats
// snapshot function. Every scrape calls the function once, so figures of
// one scrape come from one snapshot. Register it on a registry of its own
// owner's, never the default one.
//
// A UDP flow is reported through the connection series (active, total, per
// frontend and per backend) rather than under series of its own: a flow is
// what a connection is to a TCP frontend, and all four figures count flows
// on a UDP frontend, so renaming one would leave the others misnamed and
// emitting both would put one figure under two names.
type Collector struct {
	read func() stats.Stats
}

// NewCollector returns a Collector that calls read on every scrape; read
// must be safe to call from any goroutine.
func NewCollector(read func() stats.Stats) *Collector { return &Collector{read: read} }

// Describe sends every descriptor the Collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		ch <- f.desc
	}
}

// Collect reads one snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.read()
	walk(&st, metricSink(ch))
}

// metricSink turns samples into constant metrics. A label value Prometheus
// refuses (not UTF-8) becomes an invalid metric, which fails that scrape
// with a clear error instead of panicking the daemon as the Must
// constructors would.
type metricSink chan<- prometheus.Metric

func (m metricSink) send(metric prometheus.Metric, err error) {
	if err != nil {
		metric = prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
	}
	m <- metric
}

func (m metricSink) number(f *family, v float64, a, b, c string) {
	t := prometheus.GaugeValue
	if f.kind == counter {
		t = prometheus.CounterValue
	}
	m.send(prometheus.NewConstMetric(f.desc, t, v, labelValues(f, a, b, c)...))
}

func (m metricSink) integer(f *family, v uint64, a, b, c string) { m.number(f, float64(v), a, b, c) }

func (m metricSink) histogram(f *family, count uint64, sum float64, buckets []stats.Bucket, a, b, c string) {
	bs := make(map[float64]uint64, len(buckets))
	for _, bk := range buckets {
		bs[bk.UpperBound] = bk.Count
	}
	m.send(prometheus.NewConstHistogram(f.desc, count, sum, bs, labelValues(f, a, b, c)...))
}

// labelValues is the first len(f.labels) of a, b, c.
func labelValues(f *family, a, b, c string) []string {
	return []string{a, b, c}[:len(f.labels)]
}
