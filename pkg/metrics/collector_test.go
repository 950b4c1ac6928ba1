package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/splicerlb/splicer/pkg/stats"
)

func testStats() stats.Stats {
	return stats.Stats{
		Version: "1.2.3", Revision: "abc1234", GoVersion: "go1.25.0",
		Uptime: 3725.5, PipesInUse: 3, PipesMax: 4096, PipesSmall: 2, FDs: 42,
		Connections: 2, MaxConnections: 10000,
		ConnLog: stats.ConnLogStats{Lines: 30, DroppedBufferFull: 5, DroppedWriteFailed: 1},
		Frontends: []stats.FrontendStats{{
			Name: "pg", Active: 2, Peak: 9, Total: 10, Rejected: 1, Queued: 4, BytesIn: 1000, BytesOut: 5000,
			MaxConnections: 100, QueuedNow: 1, QueueTimeouts: 1,
			Refused:          map[string]uint64{"no_backend": 0, "queue_full": 0, "queue_timeout": 1, "access_list": 5},
			QueueWaitBuckets: []stats.Bucket{{UpperBound: 0.001, Count: 2}, {UpperBound: 0.01, Count: 3}},
			QueueWaitCount:   3, QueueWaitSum: 0.006,
			Closed: map[string]uint64{"client_fin": 6, "queue_timeout": 1, "no_backend": 0},
			Backends: []stats.BackendStats{{
				Name: "127.0.0.1:5432", Weight: 100, EffectiveWeight: 40, State: stats.StateDrain, MaxConnections: 50,
				Health: stats.HealthStats{Checked: true, Up: true,
					LastChange:   lastChange,
					ChecksPassed: 40, ChecksFailed: 3, TransitionsUp: 1, TransitionsDown: 1,
					CheckBuckets: []stats.Bucket{{UpperBound: 0.001, Count: 30}, {UpperBound: 0.01, Count: 42}},
					CheckCount:   43, CheckSum: 0.08,
				},
				Active: 2, Peak: 6, Total: 7, BytesIn: 700, BytesOut: 3500,
				ConnectFailures: map[string]uint64{"refused": 2, "timeout": 1, "unreachable": 0, "reset": 0, "other": 0},
				Resets:          1,
				Closed:          map[string]uint64{"client_fin": 4, "backend_reset": 1},
				PipesInUse:      2,
				ConnectBuckets:  []stats.Bucket{{UpperBound: 0.001, Count: 6}, {UpperBound: 0.01, Count: 7}},
				ConnectCount:    8, ConnectSum: 0.125,
			}},
		}, {
			Name: "idle",
		}},
	}
}

// lastChange is when testStats's backend last changed.
var lastChange = time.Unix(1767225600, 500_000_000)

const wantExposition = `
# HELP splicer_backend_bytes_total Bytes relayed through the backend; in is client to backend, out is backend to client.
# TYPE splicer_backend_bytes_total counter
splicer_backend_bytes_total{backend="127.0.0.1:5432",direction="in",frontend="pg"} 700
splicer_backend_bytes_total{backend="127.0.0.1:5432",direction="out",frontend="pg"} 3500
# HELP splicer_backend_connect_failures_total Failed connects to the backend by reason, one per try; behind a UDP frontend, ICMP errors about flows that had no reply yet.
# TYPE splicer_backend_connect_failures_total counter
splicer_backend_connect_failures_total{backend="127.0.0.1:5432",frontend="pg",reason="other"} 0
splicer_backend_connect_failures_total{backend="127.0.0.1:5432",frontend="pg",reason="refused"} 2
splicer_backend_connect_failures_total{backend="127.0.0.1:5432",frontend="pg",reason="reset"} 0
splicer_backend_connect_failures_total{backend="127.0.0.1:5432",frontend="pg",reason="timeout"} 1
splicer_backend_connect_failures_total{backend="127.0.0.1:5432",frontend="pg",reason="unreachable"} 0
# HELP splicer_backend_connect_seconds Time to establish a connection to the backend.
# TYPE splicer_backend_connect_seconds histogram
splicer_backend_connect_seconds_bucket{backend="127.0.0.1:5432",frontend="pg",le="0.001"} 6
splicer_backend_connect_seconds_bucket{backend="127.0.0.1:5432",frontend="pg",le="0.01"} 7
splicer_backend_connect_seconds_bucket{backend="127.0.0.1:5432",frontend="pg",le="+Inf"} 8
splicer_backend_connect_seconds_sum{backend="127.0.0.1:5432",frontend="pg"} 0.125
splicer_backend_connect_seconds_count{backend="127.0.0.1:5432",frontend="pg"} 8
# HELP splicer_backend_connections_active Connections open to the backend; behind a UDP frontend, flows.
# TYPE splicer_backend_connections_active gauge
splicer_backend_connections_active{backend="127.0.0.1:5432",frontend="pg"} 2
# HELP splicer_backend_connections_closed_total Connections to the backend ended, by termination cause; behind a UDP frontend, flows.
# TYPE splicer_backend_connections_closed_total counter
splicer_backend_connections_closed_total{backend="127.0.0.1:5432",cause="backend_reset",frontend="pg"} 1
splicer_backend_connections_closed_total{backend="127.0.0.1:5432",cause="client_fin",frontend="pg"} 4
# HELP splicer_backend_connections_max Cap on the backend's connections; 0 means none.
# TYPE splicer_backend_connections_max gauge
splicer_backend_connections_max{backend="127.0.0.1:5432",frontend="pg"} 50
# HELP splicer_backend_connections_peak The most connections open to the backend at once since it was added; behind a UDP frontend, flows.
# TYPE splicer_backend_connections_peak gauge
splicer_backend_connections_peak{backend="127.0.0.1:5432",frontend="pg"} 6
# HELP splicer_backend_connections_total Connections assigned to the backend (connects that failed included); behind a UDP frontend, flows opened (with responses = 0, datagrams sent on).
# TYPE splicer_backend_connections_total counter
splicer_backend_connections_total{backend="127.0.0.1:5432",frontend="pg"} 7
# HELP splicer_backend_effective_weight Weight the balancer uses now, lower during slow start.
# TYPE splicer_backend_effective_weight gauge
splicer_backend_effective_weight{backend="127.0.0.1:5432",frontend="pg"} 40
# HELP splicer_backend_health_check_seconds Time active health probes of the backend took.
# TYPE splicer_backend_health_check_seconds histogram
splicer_backend_health_check_seconds_bucket{backend="127.0.0.1:5432",frontend="pg",le="0.001"} 30
splicer_backend_health_check_seconds_bucket{backend="127.0.0.1:5432",frontend="pg",le="0.01"} 42
splicer_backend_health_check_seconds_bucket{backend="127.0.0.1:5432",frontend="pg",le="+Inf"} 43
splicer_backend_health_check_seconds_sum{backend="127.0.0.1:5432",frontend="pg"} 0.08
splicer_backend_health_check_seconds_count{backend="127.0.0.1:5432",frontend="pg"} 43
# HELP splicer_backend_health_checks_total Active health probes of the backend, by result (pass or fail).
# TYPE splicer_backend_health_checks_total counter
splicer_backend_health_checks_total{backend="127.0.0.1:5432",frontend="pg",result="fail"} 3
splicer_backend_health_checks_total{backend="127.0.0.1:5432",frontend="pg",result="pass"} 40
# HELP splicer_backend_health_last_change_timestamp_seconds Unix time of the backend's last health verdict change, or of when it was added if it has had none.
# TYPE splicer_backend_health_last_change_timestamp_seconds gauge
splicer_backend_health_last_change_timestamp_seconds{backend="127.0.0.1:5432",frontend="pg"} 1.7672256005e+09
# HELP splicer_backend_health_transitions_total Health verdict changes of the backend, by the state it went to (up or down).
# TYPE splicer_backend_health_transitions_total counter
splicer_backend_health_transitions_total{backend="127.0.0.1:5432",frontend="pg",to="down"} 1
splicer_backend_health_transitions_total{backend="127.0.0.1:5432",frontend="pg",to="up"} 1
# HELP splicer_backend_pipes_in_use Splice pipes the backend's connections hold now.
# TYPE splicer_backend_pipes_in_use gauge
splicer_backend_pipes_in_use{backend="127.0.0.1:5432",frontend="pg"} 2
# HELP splicer_backend_state 1 for the backend's current administrative state, 0 for the others.
# TYPE splicer_backend_state gauge
splicer_backend_state{backend="127.0.0.1:5432",frontend="pg",state="drain"} 1
splicer_backend_state{backend="127.0.0.1:5432",frontend="pg",state="maint"} 0
splicer_backend_state{backend="127.0.0.1:5432",frontend="pg",state="ready"} 0
# HELP splicer_backend_up 1 when the backend passes its health checks (or is not checked), else 0.
# TYPE splicer_backend_up gauge
splicer_backend_up{backend="127.0.0.1:5432",frontend="pg"} 1
# HELP splicer_backend_weight Configured weight of the backend.
# TYPE splicer_backend_weight gauge
splicer_backend_weight{backend="127.0.0.1:5432",frontend="pg"} 100
# HELP splicer_build_info Always 1; the labels say which splicer runs: its version, the source revision and the Go release that built it.
# TYPE splicer_build_info gauge
splicer_build_info{goversion="go1.25.0",revision="abc1234",version="1.2.3"} 1
# HELP splicer_connections_active Client connections open across all frontends.
# TYPE splicer_connections_active gauge
splicer_connections_active 2
# HELP splicer_connections_max Cap on client connections across all frontends.
# TYPE splicer_connections_max gauge
splicer_connections_max 10000
# HELP splicer_frontend_bytes_total Bytes relayed by the frontend; in is client to backend, out is backend to client.
# TYPE splicer_frontend_bytes_total counter
splicer_frontend_bytes_total{direction="in",frontend="idle"} 0
splicer_frontend_bytes_total{direction="in",frontend="pg"} 1000
splicer_frontend_bytes_total{direction="out",frontend="idle"} 0
splicer_frontend_bytes_total{direction="out",frontend="pg"} 5000
# HELP splicer_frontend_connections_active Client connections open on the frontend; on a UDP frontend, flows.
# TYPE splicer_frontend_connections_active gauge
splicer_frontend_connections_active{frontend="idle"} 0
splicer_frontend_connections_active{frontend="pg"} 2
# HELP splicer_frontend_connections_closed_total Client connections ended, by termination cause, each counted once: clients refused at accept or before a backend (access_list, per_client, rate_limit, no_backend, queue_full, queue_timeout, connect_failed) included; on a UDP frontend, flows.
# TYPE splicer_frontend_connections_closed_total counter
splicer_frontend_connections_closed_total{cause="client_fin",frontend="pg"} 6
splicer_frontend_connections_closed_total{cause="no_backend",frontend="pg"} 0
splicer_frontend_connections_closed_total{cause="queue_timeout",frontend="pg"} 1
# HELP splicer_frontend_connections_max Cap on the frontend's client connections; 0 means only the global cap.
# TYPE splicer_frontend_connections_max gauge
splicer_frontend_connections_max{frontend="idle"} 0
splicer_frontend_connections_max{frontend="pg"} 100
# HELP splicer_frontend_connections_peak The most client connections open on the frontend at once since it was added; on a UDP frontend, flows.
# TYPE splicer_frontend_connections_peak gauge
splicer_frontend_connections_peak{frontend="idle"} 0
splicer_frontend_connections_peak{frontend="pg"} 9
# HELP splicer_frontend_connections_queued_total Client connections that had to wait for a free backend slot.
# TYPE splicer_frontend_connections_queued_total counter
splicer_frontend_connections_queued_total{frontend="idle"} 0
splicer_frontend_connections_queued_total{frontend="pg"} 4
# HELP splicer_frontend_connections_total Client connections accepted by the frontend (refused ones excluded); on a UDP frontend, flows opened (with responses = 0, datagrams sent on).
# TYPE splicer_frontend_connections_total counter
splicer_frontend_connections_total{frontend="idle"} 0
splicer_frontend_connections_total{frontend="pg"} 10
# HELP splicer_frontend_queue_length Clients waiting now for a backend slot.
# TYPE splicer_frontend_queue_length gauge
splicer_frontend_queue_length{frontend="idle"} 0
splicer_frontend_queue_length{frontend="pg"} 1
# HELP splicer_frontend_queue_wait_seconds Time clients waited for a backend slot before they got one.
# TYPE splicer_frontend_queue_wait_seconds histogram
splicer_frontend_queue_wait_seconds_bucket{frontend="idle",le="+Inf"} 0
splicer_frontend_queue_wait_seconds_sum{frontend="idle"} 0
splicer_frontend_queue_wait_seconds_count{frontend="idle"} 0
splicer_frontend_queue_wait_seconds_bucket{frontend="pg",le="0.001"} 2
splicer_frontend_queue_wait_seconds_bucket{frontend="pg",le="0.01"} 3
splicer_frontend_queue_wait_seconds_bucket{frontend="pg",le="+Inf"} 3
splicer_frontend_queue_wait_seconds_sum{frontend="pg"} 0.006
splicer_frontend_queue_wait_seconds_count{frontend="pg"} 3
# HELP splicer_log_dropped_total Connection log lines lost, by reason: buffer_full (the writer fell behind, or its destination blocked; a summary line says how many), write_error (the destination refused them).
# TYPE splicer_log_dropped_total counter
splicer_log_dropped_total{reason="buffer_full"} 5
splicer_log_dropped_total{reason="write_error"} 1
# HELP splicer_log_lines_total Connection log lines written.
# TYPE splicer_log_lines_total counter
splicer_log_lines_total 30
# HELP splicer_pipes_in_use Splice pipes currently holding data in flight.
# TYPE splicer_pipes_in_use gauge
splicer_pipes_in_use 3
# HELP splicer_pipes_max Bound of the splice pipe pool: pipes in use at once.
# TYPE splicer_pipes_max gauge
splicer_pipes_max 4096
# HELP splicer_pipes_small_total Pipes the kernel granted below pipe_size; those under buffer_size are not used.
# TYPE splicer_pipes_small_total counter
splicer_pipes_small_total 2
`

// udpTestStats is a daemon with one UDP frontend: Active and Total count
// flows, and the queue and refusal figures stay zero as the daemon leaves
// them.
func udpTestStats() stats.Stats {
	drops := make(map[string]uint64)
	for _, reason := range stats.DropReasons() {
		drops[reason] = 0
	}
	drops["max_flows"], drops["refused"], drops["foreign_source"] = 4, 1, 2
	failures := map[string]uint64{"refused": 1, "timeout": 0, "unreachable": 0, "reset": 0, "other": 0}
	return stats.Stats{
		Version: "1.2.3", PipesMax: 4096, MaxConnections: 10000,
		Frontends: []stats.FrontendStats{{
			Name: "dns", Protocol: "udp", Active: 3, Peak: 5, Total: 12, BytesIn: 4000, BytesOut: 9000,
			DatagramsIn: 40, DatagramsOut: 38, Drops: drops,
			Backends: []stats.BackendStats{{
				Name: "10.0.0.1:53", Weight: 1, EffectiveWeight: 1, State: stats.StateReady,
				Active: 2, Total: 8, BytesIn: 2500, BytesOut: 6000,
				DatagramsIn: 25, DatagramsOut: 24, ForeignDrops: 2,
				ConnectFailures: failures,
			}, {
				Name: "10.0.0.2:53", Weight: 1, EffectiveWeight: 1, State: stats.StateReady,
				ConnectFailures: failures,
			}},
		}},
	}
}

// fixtures are the snapshots every scrape-wide test and benchmark runs on.
var fixtures = []struct {
	name string
	read func() stats.Stats
}{{"tcp", testStats}, {"udp", udpTestStats}}

// udpNames are the series only UDP frontends carry.
var udpNames = []string{
	"splicer_frontend_datagrams_total", "splicer_frontend_udp_drops_total",
	"splicer_backend_datagrams_total", "splicer_backend_foreign_drops_total",
}

const wantUDPExposition = `
# HELP splicer_frontend_datagrams_total UDP datagrams relayed by the frontend; in is client to backend, out is backend to client.
# TYPE splicer_frontend_datagrams_total counter
splicer_frontend_datagrams_total{direction="in",frontend="dns"} 40
splicer_frontend_datagrams_total{direction="out",frontend="dns"} 38
# HELP splicer_frontend_udp_drops_total UDP datagrams the frontend dropped, by reason.
# TYPE splicer_frontend_udp_drops_total counter
splicer_frontend_udp_drops_total{frontend="dns",reason="access_list"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="foreign_source"} 2
splicer_frontend_udp_drops_total{frontend="dns",reason="local_error"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="max_flows"} 4
splicer_frontend_udp_drops_total{frontend="dns",reason="no_backend"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="per_client"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="proxy_header"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="proxy_untrusted"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="rate_limit"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="receive_buffer"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="refused"} 1
splicer_frontend_udp_drops_total{frontend="dns",reason="send_error"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="shutdown"} 0
splicer_frontend_udp_drops_total{frontend="dns",reason="unsolicited"} 0
# HELP splicer_backend_datagrams_total UDP datagrams relayed through the backend; in is client to backend, out is backend to client.
# TYPE splicer_backend_datagrams_total counter
splicer_backend_datagrams_total{backend="10.0.0.1:53",direction="in",frontend="dns"} 25
splicer_backend_datagrams_total{backend="10.0.0.1:53",direction="out",frontend="dns"} 24
splicer_backend_datagrams_total{backend="10.0.0.2:53",direction="in",frontend="dns"} 0
splicer_backend_datagrams_total{backend="10.0.0.2:53",direction="out",frontend="dns"} 0
# HELP splicer_backend_foreign_drops_total UDP replies dropped for coming from another address than the backend's.
# TYPE splicer_backend_foreign_drops_total counter
splicer_backend_foreign_drops_total{backend="10.0.0.1:53",frontend="dns"} 2
splicer_backend_foreign_drops_total{backend="10.0.0.2:53",frontend="dns"} 0
`

// TestCollectorUDPSeries checks the datagram series exactly on a UDP
// frontend, and that a TCP-only daemon emits none of them.
func TestCollectorUDPSeries(t *testing.T) {
	tcp := testStats()
	tcp.Frontends[0].Protocol = "tcp"
	tests := []struct {
		name string
		st   stats.Stats
		want string
	}{
		{"udp", udpTestStats(), wantUDPExposition},
		{"tcp", tcp, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCollector(func() stats.Stats { return tc.st })
			if err := testutil.CollectAndCompare(c, strings.NewReader(tc.want), udpNames...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCollectorUDPFlows checks that a UDP frontend's flows show in the
// connection series, whose help text says so.
func TestCollectorUDPFlows(t *testing.T) {
	const want = `
# HELP splicer_frontend_connections_active Client connections open on the frontend; on a UDP frontend, flows.
# TYPE splicer_frontend_connections_active gauge
splicer_frontend_connections_active{frontend="dns"} 3
# HELP splicer_frontend_connections_total Client connections accepted by the frontend (refused ones excluded); on a UDP frontend, flows opened (with responses = 0, datagrams sent on).
# TYPE splicer_frontend_connections_total counter
splicer_frontend_connections_total{frontend="dns"} 12
`
	c := NewCollector(udpTestStats)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"splicer_frontend_connections_active", "splicer_frontend_connections_total"); err != nil {
		t.Error(err)
	}
}

func TestCollectorExact(t *testing.T) {
	c := NewCollector(testStats)
	if err := testutil.CollectAndCompare(c, strings.NewReader(wantExposition)); err != nil {
		t.Error(err)
	}
}

// TestCollectorNames pins every series the collector can emit, with its
// type and label names: a rename is a change for every dashboard and alert,
// and must show up here.
func TestCollectorNames(t *testing.T) {
	want := map[string]string{
		"splicer_build_info":                                   "gauge goversion,revision,version",
		"splicer_pipes_in_use":                                 "gauge ",
		"splicer_pipes_max":                                    "gauge ",
		"splicer_pipes_small_total":                            "counter ",
		"splicer_connections_active":                           "gauge ",
		"splicer_connections_max":                              "gauge ",
		"splicer_log_lines_total":                              "counter ",
		"splicer_log_dropped_total":                            "counter reason",
		"splicer_frontend_connections_active":                  "gauge frontend",
		"splicer_frontend_connections_peak":                    "gauge frontend",
		"splicer_frontend_connections_total":                   "counter frontend",
		"splicer_frontend_connections_queued_total":            "counter frontend",
		"splicer_frontend_connections_closed_total":            "counter cause,frontend",
		"splicer_frontend_connections_max":                     "gauge frontend",
		"splicer_frontend_queue_length":                        "gauge frontend",
		"splicer_frontend_queue_wait_seconds":                  "histogram frontend",
		"splicer_frontend_bytes_total":                         "counter direction,frontend",
		"splicer_frontend_datagrams_total":                     "counter direction,frontend",
		"splicer_frontend_udp_drops_total":                     "counter frontend,reason",
		"splicer_backend_connections_active":                   "gauge backend,frontend",
		"splicer_backend_connections_peak":                     "gauge backend,frontend",
		"splicer_backend_connections_total":                    "counter backend,frontend",
		"splicer_backend_connections_closed_total":             "counter backend,cause,frontend",
		"splicer_backend_connections_max":                      "gauge backend,frontend",
		"splicer_backend_bytes_total":                          "counter backend,direction,frontend",
		"splicer_backend_connect_failures_total":               "counter backend,frontend,reason",
		"splicer_backend_connect_seconds":                      "histogram backend,frontend",
		"splicer_backend_pipes_in_use":                         "gauge backend,frontend",
		"splicer_backend_up":                                   "gauge backend,frontend",
		"splicer_backend_weight":                               "gauge backend,frontend",
		"splicer_backend_effective_weight":                     "gauge backend,frontend",
		"splicer_backend_state":                                "gauge backend,frontend,state",
		"splicer_backend_health_checks_total":                  "counter backend,frontend,result",
		"splicer_backend_health_check_seconds":                 "histogram backend,frontend",
		"splicer_backend_health_transitions_total":             "counter backend,frontend,to",
		"splicer_backend_health_last_change_timestamp_seconds": "gauge backend,frontend",
		"splicer_backend_datagrams_total":                      "counter backend,direction,frontend",
		"splicer_backend_foreign_drops_total":                  "counter backend,frontend",
	}
	got := make(map[string]string)
	for _, fx := range fixtures {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(NewCollector(fx.read))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			var labels []string
			for _, l := range mf.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
			got[mf.GetName()] = strings.ToLower(mf.GetType().String()) + " " + strings.Join(labels, ",")
		}
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is emitted but not pinned here", name)
		}
	}
}

func TestCollectorLint(t *testing.T) {
	for _, fx := range fixtures {
		problems, err := testutil.CollectAndLint(NewCollector(fx.read))
		if err != nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: promlint: %s: %s", fx.name, p.Metric, p.Text)
		}
	}
}

// TestCollectorReadsAtScrape checks that each scrape reads a fresh snapshot,
// so a change made at runtime shows in the next scrape.
func TestCollectorReadsAtScrape(t *testing.T) {
	st := testStats()
	c := NewCollector(func() stats.Stats { return st })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	for _, want := range []float64{100, 7} {
		st.Frontends[0].Backends[0].Weight = int(want)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := -1.0
		for _, mf := range mfs {
			if mf.GetName() == "splicer_backend_weight" {
				got = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		if got != want {
			t.Errorf("splicer_backend_weight = %v, want %v", got, want)
		}
	}
}

// TestCollectorBadLabel checks that a label value Prometheus refuses fails
// the scrape with an error rather than a panic.
func TestCollectorBadLabel(t *testing.T) {
	st := testStats()
	st.Frontends[0].Backends[0].Name = "bad\xff"
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() stats.Stats { return st }))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), `label value "bad\xff" is not valid UTF-8`) {
		t.Errorf("Gather error = %v, want one naming the bad label value", err)
	}
}

// BenchmarkCollect scrapes one frontend of 20 backends, TCP and UDP, the
// UDP one carrying the datagram series on top.
func BenchmarkCollect(b *testing.B) {
	for _, fx := range fixtures {
		b.Run(fx.name, func(b *testing.B) {
			st := fx.read()
			be := st.Frontends[0].Backends[0]
			st.Frontends[0].Backends = nil
			for i := range 20 {
				be.Name = fmt.Sprintf("10.0.0.%d:5432", i+1)
				st.Frontends[0].Backends = append(st.Frontends[0].Backends, be)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(NewCollector(func() stats.Stats { return st }))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
