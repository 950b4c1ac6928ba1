package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/history"
	"github.com/splicerlb/splicer/pkg/stats"
)

// source is the daemon seen by the admin API: it reads the data plane's and
// the health checks' counters at request time and applies runtime control.
// The admin server logs each change with the operator's address.
type source struct {
	d *Daemon
}

var (
	_ admin.Source    = (*source)(nil)
	_ admin.Lifecycle = (*source)(nil)
)

// Stats implements admin.Source.
func (s *source) Stats() stats.Stats {
	d := s.d
	cfg := d.config()
	now := time.Now()
	logc := d.srv.ConnLogCounters()
	out := stats.Stats{
		Version:        d.opts.Version,
		Revision:       d.opts.Revision,
		GoVersion:      runtime.Version(),
		StartedAt:      d.started,
		Uptime:         now.Sub(d.started).Seconds(),
		PipesInUse:     d.srv.PipesInUse(),
		PipesSmall:     d.srv.SmallPipes(),
		PipesMax:       cfg.Global.MaxPipes,
		FDs:            openFDs(),
		Connections:    d.srv.ActiveConnections(),
		MaxConnections: cfg.Global.MaxConnections,
		ConnLog: stats.ConnLogStats{
			Lines: logc.Lines, DroppedBufferFull: logc.DroppedFull, DroppedWriteFailed: logc.DroppedWrite,
		},
	}
	for i := range cfg.Frontends {
		fe := &cfg.Frontends[i]
		fc, _ := d.srv.Counters(fe.Name)
		fs := stats.FrontendStats{
			Name: fe.Name, Protocol: fe.Protocol, Strategy: fe.Strategy,
			Active: fc.Active, Peak: fc.Peak, Total: fc.Total, Queued: fc.Queued,
			Rejected:       fc.NoBackend + fc.ConnectFailed + fc.QueueFull + fc.QueueTimeouts,
			MaxConnections: fe.MaxConnections, QueuedNow: fc.QueuedNow, QueueTimeouts: fc.QueueTimeouts,
			Refused: map[string]uint64{
				"no_backend": fc.NoBackend, "connect_failed": fc.ConnectFailed,
				"queue_full": fc.QueueFull, "queue_timeout": fc.QueueTimeouts,
				"access_list": fc.Denied, "per_client": fc.PerClient, "rate_limit": fc.RateLimited,
			},
			BytesIn: fc.BytesIn, BytesOut: fc.BytesOut,
			DatagramsIn: fc.DatagramsIn, DatagramsOut: fc.DatagramsOut,
		}
		udp := fe.Protocol == config.ProtocolUDP
		fs.Closed = causeMap(l4.Causes(udp, false), fc.Closed[:])
		if udp {
			fs.Drops = make(map[string]uint64, l4.NumDropReasons)
			for r, n := range fc.Drops {
				fs.Drops[l4.DropReason(r).String()] = n
			}
		}
		fs.QueueWaitBuckets, fs.QueueWaitCount, fs.QueueWaitSum = cumulative(fc.QueueWait)
		for _, a := range d.srv.Addrs(fe.Name) {
			fs.Listen = append(fs.Listen, a.String())
		}
		fs.Rates, _ = d.history.Rates(history.Key{Frontend: fe.Name})
		backendCauses := l4.Causes(udp, true)
		backends := d.srv.Backends(fe.Name)
		fs.Backends = make([]stats.BackendStats, 0, len(backends))
		for _, b := range backends {
			bs, st := s.backendStats(fe.Name, b)
			bs.Closed = causeMap(backendCauses, st.Closed[:])
			bs.Rates, _ = d.history.Rates(history.Key{Frontend: fe.Name, Backend: b.Name()})
			fs.Backends = append(fs.Backends, bs)
		}
		out.Frontends = append(out.Frontends, fs)
	}
	return out
}

// backendStats is b's stats but for Closed, and the counters read for them.
func (s *source) backendStats(frontend string, b *backend.Backend) (stats.BackendStats, backend.Stats) {
	st := b.Stats()
	bs := stats.BackendStats{
		Name: b.Name(), Address: b.Address().String(),
		Weight: b.Weight(), EffectiveWeight: b.EffectiveWeight(),
		State: b.State().String(), Backup: b.Backup(), MaxConnections: b.MaxConnections(),
		Active: st.Active, Peak: b.Peak(), Total: st.Total, BytesIn: st.BytesUp, BytesOut: st.BytesDown,
		DatagramsIn: st.DatagramsUp, DatagramsOut: st.DatagramsDown, ForeignDrops: st.Foreign,
		ConnectFailures: make(map[string]uint64, backend.NumFailReasons),
		Resets:          st.Resets,
		PipesInUse:      st.Pipes,
		Health:          stats.HealthStats{Up: b.Healthy()},
	}
	for r, n := range st.Failures {
		bs.ConnectFailures[backend.FailReason(r).String()] = n
	}
	bs.ConnectBuckets, bs.ConnectCount, bs.ConnectSum = cumulative(st.Connect)
	bs.ConnectP50 = stats.Quantile(bs.ConnectBuckets, bs.ConnectCount, 0.5)
	bs.ConnectP99 = stats.Quantile(bs.ConnectBuckets, bs.ConnectCount, 0.99)
	hc := b.HealthCounters()
	bs.Health.LastChange = hc.Changed
	if sched := s.d.checks.scheduler(frontend); sched != nil {
		if hs, ok := sched.State(b); ok {
			bs.Health = stats.HealthStats{
				Checked: true, Check: s.d.checkOf(frontend), Up: hs.Up, PassiveFailures: hs.PassiveFailures,
				LastOK: hs.Last.OK, LastMessage: hs.Last.Msg, LastDuration: hs.Last.Duration.Seconds(),
				LastCheck: hs.LastCheck, LastChange: hc.Changed,
				Successes: hs.Successes, Failures: hs.Failures,
				ChecksPassed: hc.Passed, ChecksFailed: hc.Failed,
				TransitionsUp: hc.Up, TransitionsDown: hc.Down,
			}
			bs.Health.CheckBuckets, bs.Health.CheckCount, bs.Health.CheckSum = cumulative(hc.Checks)
			if s.d.checks.probing(frontend) {
				bs.Health.Probes = &stats.ProbeStats{Skipped: hs.Skipped, Connections: hs.Connections}
			}
		}
	}
	return bs, st
}

// cumulative turns a duration histogram (buckets per bound) into the
// Prometheus form: cumulative buckets, the overflow bucket counted only in
// the total.
func cumulative(h backend.Durations) (buckets []stats.Bucket, count uint64, sum float64) {
	var cum uint64
	buckets = make([]stats.Bucket, 0, backend.NumDurationBounds)
	for i, bound := range backend.DurationBounds() {
		cum += h.Buckets[i]
		buckets = append(buckets, stats.Bucket{UpperBound: bound.Seconds(), Count: cum})
	}
	return buckets, h.Count(), h.Sum.Seconds()
}

// checkOf returns the health.check of frontend in the config in force.
func (d *Daemon) checkOf(frontend string) string {
	cfg := d.config()
	for i := range cfg.Frontends {
		if cfg.Frontends[i].Name == frontend {
			return cfg.Frontends[i].Health.Check
		}
	}
	return ""
}

// causeMap names the counts of causes, indexed by cause number.
func causeMap(causes []l4.Cause, counts []uint64) map[string]uint64 {
	m := make(map[string]uint64, len(causes))
	for _, c := range causes {
		m[c.String()] = counts[c]
	}
	return m
}

// find returns the backend named name in frontend fe.
func (s *source) find(fe, name string) (*backend.Backend, error) {
	bs := s.d.srv.Backends(fe)
	if bs == nil {
		return nil, fmt.Errorf("frontend %q: %w", fe, admin.ErrNotFound)
	}
	if b := findBackend(bs, name); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("frontend %q has no backend %q: %w", fe, name, admin.ErrNotFound)
}

// SetState implements admin.Source.
func (s *source) SetState(fe, name, state string) error {
	b, err := s.find(fe, name)
	if err != nil {
		return err
	}
	st, err := backend.ParseState(state)
	if err != nil {
		return fmt.Errorf("%w: %v", admin.ErrInvalid, err)
	}
	if err := b.SetState(st); err != nil {
		return fmt.Errorf("%w: %v", admin.ErrInvalid, err)
	}
	s.d.saveState()
	return nil
}

// SetWeight implements admin.Source.
func (s *source) SetWeight(fe, name string, weight int) error {
	b, err := s.find(fe, name)
	if err != nil {
		return err
	}
	if err := b.SetWeight(weight); err != nil {
		return fmt.Errorf("%w: %v", admin.ErrInvalid, err)
	}
	s.d.saveState()
	return nil
}

// Connections implements admin.Source.
func (s *source) Connections(fe string, after uint64, limit int) ([]stats.Conn, int, error) {
	if fe != "" && s.d.srv.Backends(fe) == nil {
		return nil, 0, fmt.Errorf("frontend %q: %w", fe, admin.ErrNotFound)
	}
	infos, total := s.d.srv.Connections(fe, after, limit)
	now := time.Now()
	out := make([]stats.Conn, len(infos))
	for i, c := range infos {
		out[i] = stats.Conn{
			ID: c.ID, Frontend: c.Frontend, Client: c.Client.String(), Via: addrString(c.Via), Backend: c.Backend,
			State: c.State, Age: now.Sub(c.Started).Seconds(), BytesIn: c.BytesIn, BytesOut: c.BytesOut,
		}
	}
	return out, total, nil
}

// CloseConnection implements admin.Source.
func (s *source) CloseConnection(id uint64) error {
	err := s.d.srv.CloseConnection(id)
	if errors.Is(err, l4.ErrNoConnection) {
		return fmt.Errorf("connection %d: %w", id, admin.ErrNotFound)
	}
	return err
}

// Ready implements admin.Source: listeners bound and the config loaded,
// and not handed over to a new process.
func (s *source) Ready() bool { return s.d.srv.Started() && !s.d.isHandedOver() }

// Reload implements admin.Lifecycle.
func (s *source) Reload(ctx context.Context) admin.ReloadResult {
	out := s.d.Reload(ctx)
	res := admin.ReloadResult{OK: out.OK, Config: out.File, Seconds: out.Duration.Seconds()}
	if out.OK {
		res.Changes = out.Change
	}
	for _, p := range out.Problems {
		res.Problems = append(res.Problems, admin.Problem{File: p.File, Line: p.Line, Path: p.Path, Message: p.Msg, Text: p.String()})
	}
	return res
}

// Upgrade implements admin.Lifecycle.
func (s *source) Upgrade(ctx context.Context) admin.UpgradeResult {
	out := s.d.Upgrade(ctx)
	res := admin.UpgradeResult{OK: out.OK, OldPID: out.OldPID, NewPID: out.NewPID}
	if out.Err != nil {
		res.Error = out.Err.Error()
	}
	return res
}

// RuntimeState implements admin.Lifecycle.
func (s *source) RuntimeState() stats.RuntimeState {
	return runtimeState(s.d.config(), s.d.srv)
}

// openFDs counts the process's open file descriptors; -1 if unknown.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // the directory's own fd
}

// addrString is a's text, or "" for the zero address.
func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
