package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// dnsCollector exports the DNS lookups of the frontends' discovery,
// read at scrape time:
//
//	splicer_dns_lookups_total{frontend,name,type,result}
//	splicer_dns_last_success_timestamp_seconds{frontend,name,type}
//	splicer_dns_backends{frontend,name,type}
//
// result is "success", "partial" (applied, but the address lookup of
// one SRV target or more failed: each keeps its last addresses for up to
// max_interval), "failure" (no resolver answered, or every SRV target
// failed) or "empty" (an answer with no backend); the last two keep the
// last good backends, so an alert on rate(...{result!="success"}) finds a
// DNS outage that the traffic does not show yet. A source replaced by a reload starts its
// counts again, which Prometheus' rate() reads as a counter reset.
type dnsCollector struct {
	ds                  *discoveries
	lookups, last, used *prometheus.Desc
}

func newDNSCollector(ds *discoveries) *dnsCollector {
	labels := []string{"frontend", "name", "type"}
	return &dnsCollector{
		ds: ds,
		lookups: prometheus.NewDesc("splicer_dns_lookups_total",
			"DNS lookups of discovery and of backends given by host name, by result: success, partial (some SRV targets failed and keep their last addresses for up to max_interval), failure (no resolver answered, or every SRV target failed) or empty (no backend in the answer); the last two keep the last good backends.",
			append(labels, "result"), nil),
		last: prometheus.NewDesc("splicer_dns_last_success_timestamp_seconds",
			"Unix time of the last lookup that found backends.", labels, nil),
		used: prometheus.NewDesc("splicer_dns_backends",
			"Backends in the last good answer: the ones serving.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *dnsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lookups
	ch <- c.last
	ch <- c.used
}

// Collect implements prometheus.Collector.
func (c *dnsCollector) Collect(ch chan<- prometheus.Metric) {
	for fe, list := range c.ds.dnsStats() {
		for _, s := range list {
			ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(s.Succeeded), fe, s.Name, s.Type, "success")
			ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(s.Partial), fe, s.Name, s.Type, "partial")
			ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(s.Failed), fe, s.Name, s.Type, "failure")
			ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(s.Empty), fe, s.Name, s.Type, "empty")
			ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(s.Backends), fe, s.Name, s.Type)
			if !s.LastSuccess.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, float64(s.LastSuccess.UnixNano())/1e9, fe, s.Name, s.Type)
			}
		}
	}
}
