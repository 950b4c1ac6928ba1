package admin

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
)

// fakeSource is a Source over fixed figures that records changes, so tests
// can assert exact answers and see mutations in the next Stats call.
type fakeSource struct {
	mu    sync.Mutex
	st    stats.Stats
	conns []stats.Conn // ascending ID
	ready bool
}

func newFakeSource() *fakeSource {
	started := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	failures := func(refused, timeout uint64) map[string]uint64 {
		return map[string]uint64{"refused": refused, "timeout": timeout, "unreachable": 0, "reset": 0, "other": 0}
	}
	return &fakeSource{
		ready: true,
		st: stats.Stats{
			Version: "1.2.3", StartedAt: started, Uptime: 3725,
			PipesInUse: 3, PipesMax: 4096, FDs: 42, Connections: 2, MaxConnections: 10000,
			Frontends: []stats.FrontendStats{{
				Name: "pg", Listen: []string{"127.0.0.1:6432"}, Protocol: "tcp", Strategy: "leastconn",
				Active: 2, Peak: 6, Total: 10, Rejected: 1, Queued: 4, BytesIn: 1000, BytesOut: 5000,
				MaxConnections: 100, QueuedNow: 1, QueueTimeouts: 1,
				Refused: map[string]uint64{"no_backend": 0, "queue_full": 0, "queue_timeout": 1,
					"access_list": 5, "per_client": 0, "rate_limit": 0},
				QueueWaitBuckets: []stats.Bucket{{UpperBound: 0.001, Count: 2}, {UpperBound: 0.01, Count: 3}},
				QueueWaitCount:   3, QueueWaitSum: 0.006,
				Closed: map[string]uint64{"client_fin": 3, "access_list": 5, "queue_timeout": 1},
				Rates: &stats.Rates{Window: 600,
					Now:  stats.Point{Conns: 12.5, BytesIn: 1500, BytesOut: 2.5e6, Active: 2, Queued: 1, Errors: 0.5},
					Peak: stats.Point{Conns: 140, BytesIn: 12000, BytesOut: 3.2e6, Active: 5, Queued: 4, Errors: 2}},
				Backends: []stats.BackendStats{{
					Name: "a", Address: "127.0.0.1:5432", Weight: 100, EffectiveWeight: 100, State: "ready",
					MaxConnections: 50,
					Health: stats.HealthStats{Checked: true, Check: "tcp", Up: true, LastOK: true, LastMessage: "ok",
						LastDuration: 0.0015, LastCheck: started.Add(time.Hour), LastChange: started.Add(time.Minute),
						Successes: 5},
					Active: 2, Peak: 6, Total: 7, BytesIn: 700, BytesOut: 3500,
					ConnectFailures: failures(2, 1), Resets: 1, PipesInUse: 2,
					Closed:     map[string]uint64{"client_fin": 3, "backend_reset": 1},
					ConnectP50: 0.0005, ConnectP99: 0.001,
					ConnectBuckets: []stats.Bucket{{UpperBound: 0.001, Count: 6}, {UpperBound: 0.01, Count: 7}},
					ConnectCount:   7, ConnectSum: 0.0042,
					Rates: &stats.Rates{Window: 600,
						Now:  stats.Point{Conns: 12.5, BytesIn: 1500, BytesOut: 2.5e6, Active: 2, Errors: 0.5, ConnectP50: 0.0004, ConnectP99: 0.0009},
						Peak: stats.Point{Conns: 140, BytesIn: 12000, BytesOut: 3.2e6, Active: 5, Errors: 2, ConnectP50: 0.0006, ConnectP99: 0.002}},
				}, {
					Name: "[::1]:5433", Address: "[::1]:5433", Weight: 50, EffectiveWeight: 10, State: "drain",
					Backup: true,
					Health: stats.HealthStats{Checked: true, Check: "tcp", LastMessage: "connect: connection refused",
						LastDuration: 0.0002, LastCheck: started.Add(time.Hour), Failures: 3},
					Peak: 1, Total: 3, BytesIn: 300, BytesOut: 1500,
					ConnectFailures: failures(0, 0),
					ConnectBuckets:  []stats.Bucket{{UpperBound: 0.001, Count: 3}, {UpperBound: 0.01, Count: 3}},
					ConnectCount:    3, ConnectSum: 0.0009,
				}},
			}, {
				Name: "cache", Listen: []string{"127.0.0.1:6380", "[::1]:6380"}, Protocol: "tcp", Strategy: "maglev",
				Backends: []stats.BackendStats{},
			}},
		},
		conns: []stats.Conn{
			{ID: 3, Frontend: "pg", Client: "127.0.0.1:40001", Backend: "a", State: "relaying", Age: 1.5, BytesIn: 10, BytesOut: 20},
			{ID: 5, Frontend: "cache", Client: "127.0.0.1:40002", State: "connecting", Age: 0.25},
			{ID: 8, Frontend: "pg", Client: "127.0.0.1:40003", Backend: "a", State: "relaying", Age: 0.5, BytesIn: 30, BytesOut: 40},
			{ID: 9, Frontend: "pg", Client: "[::1]:40004", Backend: "[::1]:5433", State: "closing", Age: 2, BytesIn: 50, BytesOut: 60},
		},
	}
}

// udpFrontend is a UDP frontend as the daemon reports it: Active and Total
// count flows, every drop reason is present, the queue and refusal figures
// stay zero, and the backend's ICMP errors show as connect failures.
func udpFrontend() stats.FrontendStats {
	drops := make(map[string]uint64)
	for _, reason := range stats.DropReasons() {
		drops[reason] = 0
	}
	drops["max_flows"], drops["refused"], drops["foreign_source"] = 4, 1, 2
	refused := make(map[string]uint64)
	for _, reason := range stats.RefusalReasons() {
		refused[reason] = 0
	}
	return stats.FrontendStats{
		Name: "dns", Listen: []string{"127.0.0.1:5353"}, Protocol: "udp", Strategy: "maglev",
		Active: 3, Peak: 4, Total: 12, BytesIn: 4000, BytesOut: 9000, DatagramsIn: 40, DatagramsOut: 38,
		Refused: refused, Drops: drops,
		Backends: []stats.BackendStats{{
			Name: "ns1", Address: "127.0.0.1:53", Weight: 1, EffectiveWeight: 1, State: "ready",
			Health: stats.HealthStats{Up: true},
			Active: 3, Peak: 4, Total: 12, BytesIn: 4000, BytesOut: 9000,
			DatagramsIn: 40, DatagramsOut: 37, ForeignDrops: 2,
			ConnectFailures: map[string]uint64{"refused": 1, "timeout": 0, "unreachable": 0, "reset": 0, "other": 0},
		}},
	}
}

// withUDP appends udpFrontend to f's frontends and returns f, for the views
// that show a UDP frontend apart; other tests keep the TCP-only figures.
func (f *fakeSource) withUDP() *fakeSource {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.Frontends = append(f.st.Frontends, udpFrontend())
	return f
}

func (f *fakeSource) Stats() stats.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Frontends = slices.Clone(st.Frontends)
	for i := range st.Frontends {
		st.Frontends[i].Backends = slices.Clone(st.Frontends[i].Backends)
	}
	return st
}

// backend finds a backend with f.mu held.
func (f *fakeSource) backend(fe, be string) (*stats.BackendStats, error) {
	for i := range f.st.Frontends {
		if fs := &f.st.Frontends[i]; fs.Name == fe {
			for j := range fs.Backends {
				if fs.Backends[j].Name == be {
					return &fs.Backends[j], nil
				}
			}
			return nil, fmt.Errorf("frontend %q has no backend %q: %w", fe, be, ErrNotFound)
		}
	}
	return nil, fmt.Errorf("no frontend %q: %w", fe, ErrNotFound)
}

func (f *fakeSource) SetState(fe, be, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.backend(fe, be)
	if err != nil {
		return err
	}
	b.State = state
	return nil
}

func (f *fakeSource) SetWeight(fe, be string, weight int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.backend(fe, be)
	if err != nil {
		return err
	}
	b.Weight, b.EffectiveWeight = weight, weight
	return nil
}

func (f *fakeSource) Connections(fe string, after uint64, limit int) ([]stats.Conn, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fe != "" && !slices.ContainsFunc(f.st.Frontends, func(s stats.FrontendStats) bool { return s.Name == fe }) {
		return nil, 0, fmt.Errorf("no frontend %q: %w", fe, ErrNotFound)
	}
	var page []stats.Conn
	total := 0
	for _, c := range f.conns {
		if fe != "" && c.Frontend != fe {
			continue
		}
		total++
		if c.ID > after && len(page) < limit {
			page = append(page, c)
		}
	}
	return page, total, nil
}

func (f *fakeSource) CloseConnection(id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.conns, func(c stats.Conn) bool { return c.ID == id })
	if i < 0 {
		return fmt.Errorf("no connection %d: %w", id, ErrNotFound)
	}
	f.conns = slices.Delete(f.conns, i, i+1)
	return nil
}

func (f *fakeSource) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeSource) setReady(r bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = r
}
