package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/history"
	"github.com/splicerlb/splicer/pkg/stats"
)

// historyInterval is the time between two samples of the history.
const historyInterval = time.Second

// newHistory returns the recorder of the last stats.HistorySeconds of
// every frontend and backend, bucketed like the backends' connect times.
func newHistory() *history.Recorder {
	var bounds []float64
	for _, b := range backend.DurationBounds() {
		bounds = append(bounds, b.Seconds())
	}
	return history.New(stats.HistorySeconds, bounds)
}

// recordHistory samples the data plane's counters once a second until ctx
// ends. It runs on its own goroutine: the loops only keep the counters
// they keep anyway.
func (d *Daemon) recordHistory(ctx context.Context) {
	tick := time.NewTicker(historyInterval)
	defer tick.Stop()
	d.history.Record(time.Now(), d.readings())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			d.history.Record(now, d.readings())
		}
	}
}

// readings reads the counters of every frontend of the config in force,
// each followed by its backends. A frontend's connect times are the sum
// of its backends'.
func (d *Daemon) readings() []history.Reading {
	cfg := d.config()
	var out []history.Reading
	for i := range cfg.Frontends {
		fe := &cfg.Frontends[i]
		fc, ok := d.srv.Counters(fe.Name)
		if !ok {
			continue
		}
		f := history.Reading{
			Key: history.Key{Frontend: fe.Name}, Protocol: fe.Protocol,
			Total: fc.Total, BytesIn: fc.BytesIn, BytesOut: fc.BytesOut,
			Active: fc.Active, Queued: int64(fc.QueuedNow),
			Connect: make([]uint64, backend.NumDurationBounds+1),
		}
		// The order of stats.FrontendErrorKinds(fe.Protocol).
		f.Errors = [history.MaxErrorKinds]uint64{fc.NoBackend, fc.ConnectFailed, fc.QueueFull, fc.QueueTimeouts,
			fc.Denied, fc.PerClient + fc.RateLimited}
		if fe.Protocol == config.ProtocolUDP {
			f.Errors = [history.MaxErrorKinds]uint64{}
			for _, n := range fc.Drops {
				f.Errors[0] += n // "dropped"
			}
		}
		out = append(out, f)
		fi := len(out) - 1
		for _, b := range d.srv.Backends(fe.Name) {
			st := b.Stats()
			r := history.Reading{
				Key:   history.Key{Frontend: fe.Name, Backend: b.Name()},
				Total: st.Total, BytesIn: st.BytesUp, BytesOut: st.BytesDown, Active: st.Active,
				Connect: st.Connect.Buckets[:],
			}
			// The order of stats.BackendErrorKinds: the connect failures,
			// then the connections the backend broke.
			copy(r.Errors[:], st.Failures[:])
			r.Errors[backend.NumFailReasons] = st.Resets
			for j, n := range st.Connect.Buckets {
				out[fi].Connect[j] += n
			}
			out = append(out, r)
		}
	}
	return out
}

// historySource serves GET /api/v1/history.
type historySource struct{ d *Daemon }

var _ admin.HistorySource = historySource{}

// History implements admin.HistorySource.
func (h historySource) History(frontend string, seconds int) (stats.History, error) {
	out, ok := h.d.history.History(frontend, seconds)
	if !ok {
		if frontend != "" && h.d.srv.Backends(frontend) == nil {
			return stats.History{}, fmt.Errorf("frontend %q: %w", frontend, admin.ErrNotFound)
		}
		// A frontend the sampler has not read yet has no samples.
	}
	return out, nil
}
