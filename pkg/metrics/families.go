package metrics

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/splicerlb/splicer/pkg/stats"
)

// Every series splicer exports is described once, here, as a family: its
// name, help, type, labels, and how its samples come out of a snapshot.
// Two sinks consume the same walk: the text writer the scrape handler uses
// (text.go), and the prometheus.Collector (collector.go) that tests and
// promlint use.

// kind is a family's Prometheus type.
type kind uint8

const (
	counter kind = iota
	gauge
	histogram
)

// family is one metric family. emit writes every sample of it from st into
// s, each with up to three label values in labels' order ("" beyond).
type family struct {
	name   string
	help   string
	kind   kind
	labels []string
	emit   func(st *stats.Stats, s sink)
	desc   *prometheus.Desc
	// order lists the indexes of labels sorted by name: the order the
	// text writes them in, as client_golang does, so the text reads the
	// same whoever writes it.
	order []int
}

// sink receives the samples of a walk, family by family.
type sink interface {
	// number is a counter or gauge sample; an integer when exact.
	number(f *family, v float64, a, b, c string)
	integer(f *family, v uint64, a, b, c string)
	// histogram is a histogram sample from cumulative buckets.
	histogram(f *family, count uint64, sum float64, buckets []stats.Bucket, a, b, c string)
}

// walk sends every sample of every family to s, family after family.
func walk(st *stats.Stats, s sink) {
	for _, f := range families {
		f.emit(st, s)
	}
}

var (
	feLabels = []string{"frontend"}
	beLabels = []string{"frontend", "backend"}
)

func labels(base []string, extra ...string) []string {
	return append(append([]string(nil), base...), extra...)
}

// The walks of the three scopes: the daemon, each frontend, each backend.

func eachFrontend(st *stats.Stats, udpOnly bool, f func(fe *stats.FrontendStats)) {
	for i := range st.Frontends {
		if fe := &st.Frontends[i]; !udpOnly || fe.Protocol == protocolUDP {
			f(fe)
		}
	}
}

func eachBackend(st *stats.Stats, udpOnly bool, f func(fe string, b *stats.BackendStats)) {
	eachFrontend(st, udpOnly, func(fe *stats.FrontendStats) {
		for i := range fe.Backends {
			f(fe.Name, &fe.Backends[i])
		}
	})
}

// frontendNumber and backendNumber make the family of one figure per
// frontend or backend.
func frontendNumber(name, help string, k kind, v func(fe *stats.FrontendStats) float64) *family {
	return &family{name: name, help: help, kind: k, labels: feLabels, emit: func(st *stats.Stats, s sink) {
		eachFrontend(st, false, func(fe *stats.FrontendStats) { s.number(nil, v(fe), fe.Name, "", "") })
	}}
}

// frontendCount and backendCount make the family of one counter per
// frontend or backend.
func frontendCount(name, help string, v func(fe *stats.FrontendStats) uint64) *family {
	return &family{name: name, help: help, kind: counter, labels: feLabels, emit: func(st *stats.Stats, s sink) {
		eachFrontend(st, false, func(fe *stats.FrontendStats) { s.integer(nil, v(fe), fe.Name, "", "") })
	}}
}

func backendCount(name, help string, udpOnly bool, v func(b *stats.BackendStats) uint64) *family {
	return &family{name: name, help: help, kind: counter, labels: beLabels, emit: func(st *stats.Stats, s sink) {
		eachBackend(st, udpOnly, func(fe string, b *stats.BackendStats) { s.integer(nil, v(b), fe, b.Name, "") })
	}}
}

// backendProbeCount makes the family of a probe counter, for the backends
// whose frontend sends probes.
func backendProbeCount(name, help string, v func(p *stats.ProbeStats) uint64) *family {
	return &family{name: name, help: help, kind: counter, labels: beLabels, emit: func(st *stats.Stats, s sink) {
		eachBackend(st, false, func(fe string, b *stats.BackendStats) {
			if p := b.Health.Probes; p != nil {
				s.integer(nil, v(p), fe, b.Name, "")
			}
		})
	}}
}

// frontendDirections and backendDirections make the family of a counter
// per direction (in: client to backend; out) per frontend or backend.
func frontendDirections(name, help string, udpOnly bool, v func(fe *stats.FrontendStats) (in, out uint64)) *family {
	return &family{name: name, help: help, kind: counter, labels: labels(feLabels, "direction"), emit: func(st *stats.Stats, s sink) {
		eachFrontend(st, udpOnly, func(fe *stats.FrontendStats) {
			in, out := v(fe)
			s.integer(nil, in, fe.Name, "in", "")
			s.integer(nil, out, fe.Name, "out", "")
		})
	}}
}

func backendDirections(name, help string, udpOnly bool, v func(b *stats.BackendStats) (in, out uint64)) *family {
	return &family{name: name, help: help, kind: counter, labels: labels(beLabels, "direction"), emit: func(st *stats.Stats, s sink) {
		eachBackend(st, udpOnly, func(fe string, b *stats.BackendStats) {
			in, out := v(b)
			s.integer(nil, in, fe, b.Name, "in")
			s.integer(nil, out, fe, b.Name, "out")
		})
	}}
}

func backendNumber(name, help string, k kind, udpOnly bool, v func(b *stats.BackendStats) float64) *family {
	return &family{name: name, help: help, kind: k, labels: beLabels, emit: func(st *stats.Stats, s sink) {
		eachBackend(st, udpOnly, func(fe string, b *stats.BackendStats) { s.number(nil, v(b), fe, b.Name, "") })
	}}
}

// families lists every family in the order the text writer emits them.
var families = bind(
	&family{name: "build_info", kind: gauge, labels: []string{"version", "revision", "goversion"},
		help: "Always 1; the labels say which splicer runs: its version, the source revision and the Go release that built it.",
		emit: func(st *stats.Stats, s sink) { s.number(nil, 1, st.Version, st.Revision, st.GoVersion) }},
	&family{name: "connections_active", kind: gauge, help: "Client connections open across all frontends.",
		emit: func(st *stats.Stats, s sink) { s.number(nil, float64(st.Connections), "", "", "") }},
	&family{name: "connections_max", kind: gauge, help: "Cap on client connections across all frontends.",
		emit: func(st *stats.Stats, s sink) { s.number(nil, float64(st.MaxConnections), "", "", "") }},
	&family{name: "pipes_in_use", kind: gauge, help: "Splice pipes currently holding data in flight.",
		emit: func(st *stats.Stats, s sink) { s.number(nil, float64(st.PipesInUse), "", "", "") }},
	&family{name: "pipes_max", kind: gauge, help: "Bound of the splice pipe pool: pipes in use at once.",
		emit: func(st *stats.Stats, s sink) { s.number(nil, float64(st.PipesMax), "", "", "") }},
	&family{name: "pipes_small_total", kind: counter, help: "Pipes the kernel granted below pipe_size; those under buffer_size are not used.",
		emit: func(st *stats.Stats, s sink) { s.integer(nil, st.PipesSmall, "", "", "") }},
	&family{name: "log_lines_total", kind: counter, help: "Connection log lines written.",
		emit: func(st *stats.Stats, s sink) { s.integer(nil, st.ConnLog.Lines, "", "", "") }},
	&family{name: "log_dropped_total", kind: counter, labels: []string{"reason"},
		help: "Connection log lines lost, by reason: buffer_full (the writer fell behind, or its destination blocked; a summary line says how many), write_error (the destination refused them).",
		emit: func(st *stats.Stats, s sink) {
			s.integer(nil, st.ConnLog.DroppedBufferFull, "buffer_full", "", "")
			s.integer(nil, st.ConnLog.DroppedWriteFailed, "write_error", "", "")
		}},

	frontendNumber("frontend_connections_active", "Client connections open on the frontend; on a UDP frontend, flows.", gauge,
		func(fe *stats.FrontendStats) float64 { return float64(fe.Active) }),
	frontendNumber("frontend_connections_peak", "The most client connections open on the frontend at once since it was added; on a UDP frontend, flows.", gauge,
		func(fe *stats.FrontendStats) float64 { return float64(fe.Peak) }),
	frontendNumber("frontend_connections_max", "Cap on the frontend's client connections; 0 means only the global cap.", gauge,
		func(fe *stats.FrontendStats) float64 { return float64(fe.MaxConnections) }),
	frontendCount("frontend_connections_total", "Client connections accepted by the frontend (refused ones excluded); on a UDP frontend, flows opened (with responses = 0, datagrams sent on).",
		func(fe *stats.FrontendStats) uint64 { return fe.Total }),
	&family{name: "frontend_connections_closed_total", kind: counter, labels: labels(feLabels, "cause"),
		help: "Client connections ended, by termination cause, each counted once: clients refused at accept or before a backend (access_list, per_client, rate_limit, no_backend, queue_full, queue_timeout, connect_failed) included; on a UDP frontend, flows.",
		emit: func(st *stats.Stats, s sink) {
			eachFrontend(st, false, func(fe *stats.FrontendStats) {
				for cause, n := range fe.Closed {
					s.integer(nil, n, fe.Name, cause, "")
				}
			})
		}},
	frontendCount("frontend_connections_queued_total", "Client connections that had to wait for a free backend slot.",
		func(fe *stats.FrontendStats) uint64 { return fe.Queued }),
	frontendNumber("frontend_queue_length", "Clients waiting now for a backend slot.", gauge,
		func(fe *stats.FrontendStats) float64 { return float64(fe.QueuedNow) }),
	&family{name: "frontend_queue_wait_seconds", kind: histogram, labels: feLabels,
		help: "Time clients waited for a backend slot before they got one.",
		emit: func(st *stats.Stats, s sink) {
			eachFrontend(st, false, func(fe *stats.FrontendStats) {
				s.histogram(nil, fe.QueueWaitCount, fe.QueueWaitSum, fe.QueueWaitBuckets, fe.Name, "", "")
			})
		}},
	frontendDirections("frontend_bytes_total", "Bytes relayed by the frontend; in is client to backend, out is backend to client.", false,
		func(fe *stats.FrontendStats) (uint64, uint64) { return fe.BytesIn, fe.BytesOut }),
	// UDP frontends only, so a TCP-only deployment scrapes no series it
	// did not have before UDP existed.
	frontendDirections("frontend_datagrams_total", "UDP datagrams relayed by the frontend; in is client to backend, out is backend to client.", true,
		func(fe *stats.FrontendStats) (uint64, uint64) { return fe.DatagramsIn, fe.DatagramsOut }),
	&family{name: "frontend_udp_drops_total", kind: counter, labels: labels(feLabels, "reason"),
		help: "UDP datagrams the frontend dropped, by reason.",
		emit: func(st *stats.Stats, s sink) {
			eachFrontend(st, true, func(fe *stats.FrontendStats) {
				// Every reason, zero or not, as for connect failures.
				for _, reason := range dropReasons {
					s.integer(nil, fe.Drops[reason], fe.Name, reason, "")
				}
			})
		}},

	backendNumber("backend_connections_active", "Connections open to the backend; behind a UDP frontend, flows.", gauge, false,
		func(b *stats.BackendStats) float64 { return float64(b.Active) }),
	backendNumber("backend_connections_peak", "The most connections open to the backend at once since it was added; behind a UDP frontend, flows.", gauge, false,
		func(b *stats.BackendStats) float64 { return float64(b.Peak) }),
	backendNumber("backend_connections_max", "Cap on the backend's connections; 0 means none.", gauge, false,
		func(b *stats.BackendStats) float64 { return float64(b.MaxConnections) }),
	backendCount("backend_connections_total", "Connections assigned to the backend (connects that failed included); behind a UDP frontend, flows opened (with responses = 0, datagrams sent on).", false,
		func(b *stats.BackendStats) uint64 { return b.Total }),
	&family{name: "backend_connections_closed_total", kind: counter, labels: labels(beLabels, "cause"),
		help: "Connections to the backend ended, by termination cause; behind a UDP frontend, flows.",
		emit: func(st *stats.Stats, s sink) {
			eachBackend(st, false, func(fe string, b *stats.BackendStats) {
				for cause, n := range b.Closed {
					s.integer(nil, n, fe, b.Name, cause)
				}
			})
		}},
	backendDirections("backend_bytes_total", "Bytes relayed through the backend; in is client to backend, out is backend to client.", false,
		func(b *stats.BackendStats) (uint64, uint64) { return b.BytesIn, b.BytesOut }),
	&family{name: "backend_connect_failures_total", kind: counter, labels: labels(beLabels, "reason"),
		help: "Failed connects to the backend by reason, one per try; behind a UDP frontend, ICMP errors about flows that had no reply yet.",
		emit: func(st *stats.Stats, s sink) {
			eachBackend(st, false, func(fe string, b *stats.BackendStats) {
				// Every reason, zero or not, so rate() sees the series
				// from before its first failure rather than missing the
				// step from 0 to 1.
				for _, reason := range failureReasons {
					s.integer(nil, b.ConnectFailures[reason], fe, b.Name, reason)
				}
			})
		}},
	&family{name: "backend_connect_seconds", kind: histogram, labels: beLabels,
		help: "Time to establish a connection to the backend.",
		emit: func(st *stats.Stats, s sink) {
			eachBackend(st, false, func(fe string, b *stats.BackendStats) {
				s.histogram(nil, b.ConnectCount, b.ConnectSum, b.ConnectBuckets, fe, b.Name, "")
			})
		}},
	backendNumber("backend_pipes_in_use", "Splice pipes the backend's connections hold now.", gauge, false,
		func(b *stats.BackendStats) float64 { return float64(b.PipesInUse) }),
	backendNumber("backend_up", "1 when the backend passes its health checks (or is not checked), else 0.", gauge, false,
		func(b *stats.BackendStats) float64 { return boolValue(b.Health.Up) }),
	backendNumber("backend_weight", "Configured weight of the backend.", gauge, false,
		func(b *stats.BackendStats) float64 { return float64(b.Weight) }),
	backendNumber("backend_effective_weight", "Weight the balancer uses now, lower during slow start.", gauge, false,
		func(b *stats.BackendStats) float64 { return float64(b.EffectiveWeight) }),
	&family{name: "backend_state", kind: gauge, labels: labels(beLabels, "state"),
		help: "1 for the backend's current administrative state, 0 for the others.",
		emit: func(st *stats.Stats, s sink) {
			eachBackend(st, false, func(fe string, b *stats.BackendStats) {
				for _, state := range adminStates {
					s.number(nil, boolValue(b.State == state), fe, b.Name, state)
				}
			})
		}},
	backendNumber("backend_health_last_change_timestamp_seconds", "Unix time of the backend's last health verdict change, or of when it was added if it has had none.", gauge, false,
		func(b *stats.BackendStats) float64 { return float64(b.Health.LastChange.UnixNano()) / 1e9 }),
	// The health series of backends whose health is checked.
	&family{name: "backend_health_checks_total", kind: counter, labels: labels(beLabels, "result"),
		help: "Active health probes of the backend, by result (pass or fail).",
		emit: func(st *stats.Stats, s sink) {
			eachBackend(st, false, func(fe string, b *stats.BackendStats) {
				if b.Health.Checked {
					s.integer(nil, b.Health.ChecksPassed, fe, b.Name, "pass")
					s.integer(nil, b.Health.ChecksFailed, fe, b.Name, "fail")
				}
			})
		}},
	// Where probes run: what probe_when_idle_only and keep-alive save.
	backendProbeCount("backend_health_probes_skipped_total",
		"Probe times skipped because the backend's traffic had proved it since the previous one (probe_when_idle_only).",
		func(p *stats.ProbeStats) uint64 { return p.Skipped }),
	backendProbeCount("backend_health_probe_connections_total",
		"Connections the health probes opened to the backend; with http keep-alive, fewer than the probes run.",
		func(p *stats.ProbeStats) uint64 { return p.Connections }),
	&family{name: "backend_health_check_seconds", kind: histogram, labels: beLabels,
		help: "Time active health probes of the backend took.",
		emit: func(st *stats.Stats, s sink) {
			eachBackend(st, false, func(fe string, b *stats.BackendStats) {
				if h := &b.Health; h.Checked {
					s.histogram(nil, h.CheckCount, h.CheckSum, h.CheckBuckets, fe, b.Name, "")
				}
			})
		}},
	&family{name: "backend_health_transitions_total", kind: counter, labels: labels(beLabels, "to"),
		help: "Health verdict changes of the backend, by the state it went to (up or down).",
		emit: func(st *stats.Stats, s sink) {
			eachBackend(st, false, func(fe string, b *stats.BackendStats) {
				if b.Health.Checked {
					s.integer(nil, b.Health.TransitionsUp, fe, b.Name, "up")
					s.integer(nil, b.Health.TransitionsDown, fe, b.Name, "down")
				}
			})
		}},
	// UDP backends only.
	backendDirections("backend_datagrams_total", "UDP datagrams relayed through the backend; in is client to backend, out is backend to client.", true,
		func(b *stats.BackendStats) (uint64, uint64) { return b.DatagramsIn, b.DatagramsOut }),
	backendCount("backend_foreign_drops_total", "UDP replies dropped for coming from another address than the backend's.", true,
		func(b *stats.BackendStats) uint64 { return b.ForeignDrops }),
)

// The fixed label values, read once.
var (
	dropReasons    = stats.DropReasons()
	failureReasons = stats.ConnectFailureReasons()
	adminStates    = stats.States()
)

// bind prefixes every name with splicer_, builds each family's Desc, and
// makes each emit pass its own family to the sink: the emit functions
// above pass nil, which bindSink fills in.
func bind(fs ...*family) []*family {
	for _, f := range fs {
		f.name = "splicer_" + f.name
		f.desc = prometheus.NewDesc(f.name, f.help, f.labels, nil)
		f.order = make([]int, len(f.labels))
		for i := range f.order {
			f.order[i] = i
		}
		slices.SortFunc(f.order, func(a, b int) int { return strings.Compare(f.labels[a], f.labels[b]) })
		emit := f.emit
		f.emit = func(st *stats.Stats, s sink) { emit(st, bound{s, f}) }
	}
	return fs
}

// bound is a sink that stamps its family on every sample.
type bound struct {
	s sink
	f *family
}

func (b bound) number(_ *family, v float64, x, y, z string) { b.s.number(b.f, v, x, y, z) }
func (b bound) integer(_ *family, v uint64, x, y, z string) { b.s.integer(b.f, v, x, y, z) }
func (b bound) histogram(_ *family, n uint64, sum float64, bs []stats.Bucket, x, y, z string) {
	b.s.histogram(b.f, n, sum, bs, x, y, z)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
