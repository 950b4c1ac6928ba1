package l4

// Inspection: what the admin API and the metrics read of the data plane,
// and the operator's actions on it (closing connections): counters per
// frontend, the live connection list, the backends of a frontend. Every
// method here is safe from any goroutine; those that need a loop's state
// post a task to each loop and wait for its answer.

import (
	"errors"
	"net/netip"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
)

// FrontendCounters are a frontend's own counters, read one by one. On a
// UDP frontend Active and Total count flows (with responses = 0, where no
// flow is kept, Total counts datagrams sent on), and the queue and refusal
// counters stay zero: a refused datagram is counted in Drops.
type FrontendCounters struct {
	Active int64  // client connections (UDP: flows) now
	Peak   int64  // the most Active ever, since the frontend was added
	Total  uint64 // client connections accepted (UDP: flows opened)
	// NoBackend counts clients closed because no backend could take
	// them, ConnectFailed those whose every try to connect failed.
	NoBackend     uint64
	ConnectFailed uint64
	Denied        uint64 // clients refused by the access list
	// PerClient and RateLimited count clients refused by
	// max_connections_per_client and connection_rate_per_client.
	PerClient   uint64
	RateLimited uint64
	// Queued counts clients ever queued for a backend slot, QueuedNow
	// those waiting now; QueueTimeouts and QueueFull count the waiters
	// closed at queue_timeout and the clients closed for a full queue.
	Queued        uint64
	QueuedNow     int
	QueueTimeouts uint64
	QueueFull     uint64
	// QueueWait is the time waiters spent queued before they got a slot.
	QueueWait backend.Durations
	BytesIn   uint64 // relayed client to backend
	BytesOut  uint64 // relayed backend to client
	// DatagramsIn and DatagramsOut count UDP datagrams relayed client to
	// backend and back; Drops counts those dropped, by DropReason.
	DatagramsIn  uint64
	DatagramsOut uint64
	Drops        [NumDropReasons]uint64
	// Closed counts ended connections (UDP: flows) by Cause, refused
	// clients included: each exactly once.
	Closed [NumCauses]uint64
}

// Counters returns frontend name's counters, false for an unknown name.
func (s *Server) Counters(name string) (FrontendCounters, bool) {
	fe := s.frontend(name)
	if fe == nil {
		return FrontendCounters{}, false
	}
	c := FrontendCounters{
		Active:        fe.active.Load(),
		Peak:          fe.peak.Load(),
		Total:         fe.total.Load(),
		NoBackend:     fe.closed[CauseNoBackend].Load(),
		ConnectFailed: fe.closed[CauseConnectFailed].Load(),
		Denied:        fe.closed[CauseDenied].Load(),
		PerClient:     fe.closed[CauseClientLimit].Load(),
		RateLimited:   fe.closed[CauseRateLimit].Load(),
		Queued:        fe.queue.total.Load(),
		QueuedNow:     fe.queue.len(),
		QueueTimeouts: fe.closed[CauseQueueTimeout].Load(),
		QueueFull:     fe.closed[CauseQueueFull].Load(),
		Closed:        fe.closed.read(),
		QueueWait:     fe.queue.wait.Read(),
		BytesIn:       fe.bytesIn.Load(),
		BytesOut:      fe.bytesOut.Load(),
		DatagramsIn:   fe.udp.dgramsIn.Load(),
		DatagramsOut:  fe.udp.dgramsOut.Load(),
	}
	for i := range c.Drops {
		c.Drops[i] = fe.udp.drops[i].Load()
	}
	return c, true
}

// ConnInfo describes one live client connection, or UDP flow.
type ConnInfo struct {
	ID       uint64
	Frontend string
	// Client is the client's address: the one a PROXY header carried, if
	// the frontend accepts them; Via is then the proxy that sent it.
	Client  netip.AddrPort
	Via     netip.AddrPort
	Backend string // the backend's name; "" while none is connected
	// State is the connection's state (proxy_header, connecting, queued,
	// starved, relaying, closing), or "flow" for a UDP flow.
	State    string
	Started  time.Time
	BytesIn  uint64 // relayed client to backend
	BytesOut uint64 // relayed backend to client
}

// ErrNoConnection is returned by CloseConnection for an unknown ID.
var ErrNoConnection = errors.New("l4: no such connection")

// Connections lists the live connections and UDP flows of frontend name
// ("" for all) whose ID is above after, ordered by ID, at most limit of
// them, and how many match in all. Every loop is asked, so it costs a
// wake-up of each: meant for operators, not for a hot path. Each loop
// keeps only its own first page (see connPage), so the cost in copies is
// bounded by limit per loop, not by the number of connections.
func (s *Server) Connections(name string, after uint64, limit int) ([]ConnInfo, int) {
	var pages [][]ConnInfo
	total := 0
	s.eachLoop(func(l *loop) {
		page := connPage{after: after, limit: limit}
		for c := range l.liveConns() {
			if name != "" && c.fe.cfg.Name != name {
				continue
			}
			total++
			if !page.wants(c.id) {
				continue
			}
			info := ConnInfo{
				ID: c.id, Frontend: c.fe.cfg.Name, Client: c.client, Via: c.via(), Started: c.start,
				State: c.state.String(), BytesIn: c.up.bytes, BytesOut: c.down.bytes,
			}
			if c.be != nil && (c.state == stateRelaying || c.state == stateClosing) {
				info.Backend = c.be.Name()
			}
			page.add(info)
		}
		for _, ln := range l.udp {
			if name != "" && ln.fe.cfg.Name != name {
				continue
			}
			total += len(ln.flows)
			for _, f := range ln.flows {
				if page.wants(f.id) {
					var via netip.AddrPort
					if f.key.origin.IsValid() {
						via = f.key.client
					}
					page.add(ConnInfo{
						ID: f.id, Frontend: ln.fe.cfg.Name, Client: f.key.clientAddr(), Via: via, Backend: f.be.Name(),
						State: "flow", Started: f.start, BytesIn: f.bytesIn, BytesOut: f.bytesOut,
					})
				}
			}
		}
		pages = append(pages, page.heap)
	})
	return mergePages(pages, limit), total
}

// CloseConnection closes the live connection with the given ID at once,
// with cause CauseAdminKill: both peers get a reset, since whatever was in
// flight is discarded. A UDP flow ends as at its idle timeout: the client's
// next datagram opens a new one.
func (s *Server) CloseConnection(id uint64) error {
	found := false
	s.eachLoop(func(l *loop) {
		for c := range l.liveConns() {
			if c.id == id {
				c.end(CauseAdminKill)
				found = true
				return
			}
		}
		for _, ln := range l.udp {
			for _, f := range ln.flows {
				if f.id == id {
					f.close(CauseAdminKill)
					found = true
					return
				}
			}
		}
	})
	if !found {
		return ErrNoConnection
	}
	return nil
}

// eachLoop runs f on each loop in turn, on the loop's own goroutine (so f
// may touch the loop's connections), and waits for each before the next:
// f needs no locking for what it gathers. It works during a graceful
// drain; a loop that has stopped is skipped.
func (s *Server) eachLoop(f func(*loop)) {
	s.mu.Lock()
	loops := s.loops
	started := s.started
	s.mu.Unlock()
	if !started {
		return
	}
	for _, l := range loops {
		done := make(chan struct{})
		l.post(func(l *loop) {
			defer close(done)
			f(l)
		})
		select {
		case <-done:
		case <-l.exited:
		}
	}
}

// Backends returns the backends of frontend name in config order, or nil
// for an unknown name; a known frontend with no backend (one whose
// discovery has not answered yet) gives an empty, non-nil slice. The slice
// is shared: do not modify it.
func (s *Server) Backends(name string) []*backend.Backend {
	if fe := s.frontend(name); fe != nil {
		if fe.backends == nil {
			return []*backend.Backend{}
		}
		return fe.backends
	}
	return nil
}

// CloseBackendConnections closes every connection of frontend name that is
// relaying to, or connecting to, b: what on_down = "close" does when b is
// marked down. They end with cause CauseBackendDown, and both peers get a
// reset, since the conversation they were having is cut. It returns, with
// the number closed, once every loop has closed them.
func (s *Server) CloseBackendConnections(name string, b *backend.Backend) (int, error) {
	fe := s.frontend(name)
	if fe == nil {
		return 0, ErrUnknownFrontend
	}
	n := 0
	s.eachLoop(func(l *loop) {
		for c := range l.liveConns() {
			if c.fe.frontendShared == fe.frontendShared && c.be == b {
				c.end(CauseBackendDown)
				n++
			}
		}
	})
	return n, nil
}
