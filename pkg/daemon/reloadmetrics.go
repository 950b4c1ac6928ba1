package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reloadMetrics count reloads the way Prometheus counts its own:
// splicer_config_reloads_total{result} and the time of the last success,
// set at start too, so "time() - last success" alerts on a config that
// keeps failing to load.
type reloadMetrics struct {
	total       *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	lastOK      prometheus.Gauge
}

func newReloadMetrics(reg *prometheus.Registry) *reloadMetrics {
	m := &reloadMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "splicer_config_reloads_total",
			Help: "Configuration reloads, by result (success or failure); a failed reload leaves the previous config serving.",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "splicer_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load (the start counts as one).",
		}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "splicer_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded, 0 if it failed.",
		}),
	}
	m.total.WithLabelValues("success")
	m.total.WithLabelValues("failure")
	m.lastSuccess.SetToCurrentTime()
	m.lastOK.Set(1)
	reg.MustRegister(m.total, m.lastSuccess, m.lastOK)
	return m
}

// observe counts one reload.
func (m *reloadMetrics) observe(ok bool, at time.Time) {
	if !ok {
		m.total.WithLabelValues("failure").Inc()
		m.lastOK.Set(0)
		return
	}
	m.total.WithLabelValues("success").Inc()
	m.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	m.lastOK.Set(1)
}
