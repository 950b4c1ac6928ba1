// Package metrics exposes splicer's counters to Prometheus. Its Collector
// reads a stats snapshot at scrape time, so the data plane does no work for
// metrics beyond the atomic counters it keeps anyway.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/splicerlb/splicer/pkg/stats"
)

// protocolUDP is FrontendStats.Protocol of a UDP frontend. Only such
// frontends carry the datagram series, so a TCP-only deployment scrapes no
// series it did not have before UDP existed.
const protocolUDP = "udp"

// Collector is a prometheus.Collector over a stats snapshot function. Every
// scrape calls the function once and emits constant metrics from the result,
// so figures of one scrape come from one snapshot. Register it on the
// daemon's own registry; it never touches the default one.
type Collector struct {
	read func() stats.Stats

	buildInfo, uptime, pipesInUse, pipesMax, pipesSmall, openFDs, connActive, connMax *prometheus.Desc

	feActive, feTotal, feRejected, feQueued, feBytes *prometheus.Desc
	feMax, feQueueLen, feRefused, feQueueWait        *prometheus.Desc
	feDatagrams, feDrops, feClosed                   *prometheus.Desc

	beActive, beTotal, beBytes, beFailures, beResets, bePipes, beConnect, beMax *prometheus.Desc
	beUp, beWeight, beEffWeight, beState                                        *prometheus.Desc
	beDatagrams, beForeign, beClosed                                            *prometheus.Desc
	beProbes, beProbesSkipped, beProbeConns                                     *prometheus.Desc
}

// NewCollector returns a Collector that calls read on every scrape; read
// must be safe to call from any goroutine.
//
// A UDP flow is reported through the connection series (active, total, per
// frontend and per backend) rather than under series of its own: a flow is
// what a connection is to a TCP frontend, and all four figures count flows
// on a UDP frontend, so renaming one would leave the others misnamed and
// emitting both would put one figure under two names.
func NewCollector(read func() stats.Stats) *Collector {
	fe := []string{"frontend"}
	be := []string{"frontend", "backend"}
	desc := func(name, help string, labels []string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("splicer_"+name, help, append(append([]string{}, labels...), extra...), nil)
	}
	return &Collector{
		read:       read,
		buildInfo:  desc("build_info", "Always 1; the version label tells which splicer runs.", nil, "version"),
		uptime:     desc("uptime_seconds", "Seconds since the daemon started.", nil),
		pipesInUse: desc("pipes_in_use", "Splice pipes currently holding data in flight.", nil),
		pipesMax:   desc("pipes_max", "Bound of the splice pipe pool: pipes in use at once.", nil),
		pipesSmall: desc("pipes_small_total", "Pipes the kernel granted below pipe_size; those under buffer_size are not used.", nil),
		openFDs:    desc("open_fds", "File descriptors the process has open.", nil),
		connActive: desc("connections_active", "Client connections open across all frontends.", nil),
		connMax:    desc("connections_max", "Cap on client connections across all frontends.", nil),

		feActive:    desc("frontend_connections_active", "Client connections open on the frontend; on a UDP frontend, flows.", fe),
		feTotal:     desc("frontend_connections_total", "Client connections accepted by the frontend; on a UDP frontend, flows opened.", fe),
		feRejected:  desc("frontend_connections_rejected_total", "Client connections refused at a connection cap or queue timeout.", fe),
		feQueued:    desc("frontend_connections_queued_total", "Client connections that had to wait for a free slot.", fe),
		feBytes:     desc("frontend_bytes_total", "Bytes relayed by the frontend; in is client to backend, out is backend to client.", fe, "direction"),
		feMax:       desc("frontend_connections_max", "Cap on the frontend's client connections; 0 means only the global cap.", fe),
		feQueueLen:  desc("frontend_queue_length", "Clients waiting now for a backend slot.", fe),
		feRefused:   desc("frontend_refused_total", "Clients turned away, by reason.", fe, "reason"),
		feQueueWait: desc("frontend_queue_wait_seconds", "Time clients waited for a backend slot before they got one.", fe),
		feDatagrams: desc("frontend_datagrams_total", "UDP datagrams relayed by the frontend; in is client to backend, out is backend to client.", fe, "direction"),
		feDrops:     desc("frontend_udp_drops_total", "UDP datagrams the frontend dropped, by reason.", fe, "reason"),
		feClosed:    desc("frontend_connections_closed_total", "Client connections ended, refused ones included, by termination cause; on a UDP frontend, flows.", fe, "cause"),

		beActive:    desc("backend_connections_active", "Connections open to the backend; behind a UDP frontend, flows.", be),
		beTotal:     desc("backend_connections_total", "Connections established to the backend; behind a UDP frontend, flows opened.", be),
		beBytes:     desc("backend_bytes_total", "Bytes relayed through the backend; in is client to backend, out is backend to client.", be, "direction"),
		beFailures:  desc("backend_connect_failures_total", "Failed connects to the backend by reason; behind a UDP frontend, ICMP errors about flows that had no reply yet.", be, "reason"),
		beResets:    desc("backend_resets_total", "Relayed connections ended by a reset.", be),
		bePipes:     desc("backend_pipes_in_use", "Splice pipes the backend's connections hold now.", be),
		beMax:       desc("backend_connections_max", "Cap on the backend's connections; 0 means none.", be),
		beConnect:   desc("backend_connect_seconds", "Time to establish a connection to the backend.", be),
		beUp:        desc("backend_up", "1 when the backend passes its health checks (or is not checked), else 0.", be),
		beWeight:    desc("backend_weight", "Configured weight of the backend.", be),
		beEffWeight: desc("backend_effective_weight", "Weight the balancer uses now, lower during slow start.", be),
		beState:     desc("backend_state", "1 for the backend's current administrative state, 0 for the others.", be, "state"),
		beDatagrams: desc("backend_datagrams_total", "UDP datagrams relayed through the backend; in is client to backend, out is backend to client.", be, "direction"),
		beForeign:   desc("backend_foreign_drops_total", "UDP replies dropped for coming from another address than the backend's.", be),
		beClosed:    desc("backend_connections_closed_total", "Connections to the backend ended, by termination cause; behind a UDP frontend, flows.", be, "cause"),

		beProbes:        desc("backend_health_probes_total", "Active health probes sent to the backend.", be),
		beProbesSkipped: desc("backend_health_probes_skipped_total", "Probe times skipped because the backend's traffic had proved it (probe_when_idle_only).", be),
		beProbeConns:    desc("backend_health_probe_connections_total", "Connections the health probes opened to the backend; with http keep-alive, fewer than probes.", be),
	}
}

// Describe sends every descriptor the Collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.buildInfo, c.uptime, c.pipesInUse, c.pipesMax, c.pipesSmall, c.openFDs, c.connActive, c.connMax,
		c.feActive, c.feTotal, c.feRejected, c.feQueued, c.feBytes,
		c.feMax, c.feQueueLen, c.feRefused, c.feQueueWait,
		c.feDatagrams, c.feDrops, c.feClosed,
		c.beActive, c.beTotal, c.beBytes, c.beFailures, c.beResets, c.bePipes, c.beConnect, c.beMax,
		c.beUp, c.beWeight, c.beEffWeight, c.beState,
		c.beDatagrams, c.beForeign, c.beClosed,
		c.beProbes, c.beProbesSkipped, c.beProbeConns,
	} {
		ch <- d
	}
}

// Collect reads one snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.read()
	e := emitter(ch)
	e.gauge(c.buildInfo, 1, st.Version)
	e.gauge(c.uptime, st.Uptime)
	e.gauge(c.pipesInUse, float64(st.PipesInUse))
	e.gauge(c.pipesMax, float64(st.PipesMax))
	e.counter(c.pipesSmall, st.PipesSmall)
	e.gauge(c.openFDs, float64(st.FDs))
	e.gauge(c.connActive, float64(st.Connections))
	e.gauge(c.connMax, float64(st.MaxConnections))
	for _, fe := range st.Frontends {
		e.gauge(c.feActive, float64(fe.Active), fe.Name)
		e.counter(c.feTotal, fe.Total, fe.Name)
		e.counter(c.feRejected, fe.Rejected, fe.Name)
		e.counter(c.feQueued, fe.Queued, fe.Name)
		e.counter(c.feBytes, fe.BytesIn, fe.Name, "in")
		e.counter(c.feBytes, fe.BytesOut, fe.Name, "out")
		e.gauge(c.feMax, float64(fe.MaxConnections), fe.Name)
		e.gauge(c.feQueueLen, float64(fe.QueuedNow), fe.Name)
		for _, reason := range stats.RefusalReasons() {
			e.counter(c.feRefused, fe.Refused[reason], fe.Name, reason)
		}
		e.send(prometheus.NewConstHistogram(c.feQueueWait, fe.QueueWaitCount, fe.QueueWaitSum,
			histogramBuckets(fe.QueueWaitBuckets), fe.Name))
		for cause, n := range fe.Closed {
			e.counter(c.feClosed, n, fe.Name, cause)
		}
		udp := fe.Protocol == protocolUDP
		if udp {
			c.collectUDPFrontend(e, &fe)
		}
		for i := range fe.Backends {
			c.collectBackend(e, fe.Name, &fe.Backends[i])
			if udp {
				c.collectUDPBackend(e, fe.Name, &fe.Backends[i])
			}
		}
	}
}

func (c *Collector) collectUDPFrontend(e emitter, fe *stats.FrontendStats) {
	e.counter(c.feDatagrams, fe.DatagramsIn, fe.Name, "in")
	e.counter(c.feDatagrams, fe.DatagramsOut, fe.Name, "out")
	// Every reason is emitted, zero or not, as for connect failures.
	for _, reason := range stats.DropReasons() {
		e.counter(c.feDrops, fe.Drops[reason], fe.Name, reason)
	}
}

func (c *Collector) collectUDPBackend(e emitter, fe string, b *stats.BackendStats) {
	e.counter(c.beDatagrams, b.DatagramsIn, fe, b.Name, "in")
	e.counter(c.beDatagrams, b.DatagramsOut, fe, b.Name, "out")
	e.counter(c.beForeign, b.ForeignDrops, fe, b.Name)
}

func (c *Collector) collectBackend(e emitter, fe string, b *stats.BackendStats) {
	e.gauge(c.beActive, float64(b.Active), fe, b.Name)
	e.counter(c.beTotal, b.Total, fe, b.Name)
	e.counter(c.beBytes, b.BytesIn, fe, b.Name, "in")
	e.counter(c.beBytes, b.BytesOut, fe, b.Name, "out")
	// Every reason is emitted, zero or not, so rate() sees the series from
	// before its first failure rather than missing the step from 0 to 1.
	for _, reason := range stats.ConnectFailureReasons() {
		e.counter(c.beFailures, b.ConnectFailures[reason], fe, b.Name, reason)
	}
	e.counter(c.beResets, b.Resets, fe, b.Name)
	for cause, n := range b.Closed {
		e.counter(c.beClosed, n, fe, b.Name, cause)
	}
	e.gauge(c.bePipes, float64(b.PipesInUse), fe, b.Name)
	e.send(prometheus.NewConstHistogram(c.beConnect, b.ConnectCount, b.ConnectSum, histogramBuckets(b.ConnectBuckets), fe, b.Name))
	e.gauge(c.beMax, float64(b.MaxConnections), fe, b.Name)
	e.gauge(c.beUp, boolValue(b.Health.Up), fe, b.Name)
	e.gauge(c.beWeight, float64(b.Weight), fe, b.Name)
	e.gauge(c.beEffWeight, float64(b.EffectiveWeight), fe, b.Name)
	for _, state := range stats.States() {
		e.gauge(c.beState, boolValue(b.State == state), fe, b.Name, state)
	}
	if p := b.Health.Probes; p != nil {
		e.counter(c.beProbes, p.Run, fe, b.Name)
		e.counter(c.beProbesSkipped, p.Skipped, fe, b.Name)
		e.counter(c.beProbeConns, p.Connections, fe, b.Name)
	}
}

// emitter sends constant metrics. A label value Prometheus refuses (not
// UTF-8) becomes an invalid metric, which fails that scrape with a clear
// error instead of panicking the daemon as the Must constructors would.
type emitter chan<- prometheus.Metric

func (e emitter) send(m prometheus.Metric, err error) {
	if err != nil {
		m = prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
	}
	e <- m
}

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.send(prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...))
}

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.send(prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), labels...))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// histogramBuckets turns cumulative stats buckets into the map Prometheus'
// constant histograms take.
func histogramBuckets(bs []stats.Bucket) map[float64]uint64 {
	m := make(map[float64]uint64, len(bs))
	for _, b := range bs {
		m[b.UpperBound] = b.Count
	}
	return m
}
