package l4

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/balance"
	"github.com/splicerlb/splicer/pkg/config"
)

// A reload of the data plane is two steps. Prepare does everything that can
// fail (new sockets bound, backends merged, configs checked) while the
// loops serve on untouched; Commit then publishes the new frontends and
// gives each loop one task that moves its listeners over, so no loop is
// held up for longer than that one task. A frontend that changes gets a new
// generation (see frontend): listeners serve the new one at once, while
// each connection finishes under the generation that accepted it.

// commitWait bounds how long Commit waits for each loop to run its task;
// a loop that takes longer runs it later, and the report says so.
const commitWait = 10 * time.Second

// Change summarises what a reload changed in the data plane.
type Change struct {
	FrontendsAdded   []string `json:"frontends_added,omitempty"`
	FrontendsRemoved []string `json:"frontends_removed,omitempty"`
	FrontendsChanged []string `json:"frontends_changed,omitempty"`
	// ListenersOpened and ListenersClosed name addresses as "tcp
	// 127.0.0.1:7000"; the sockets of every other address are kept.
	ListenersOpened []string `json:"listeners_opened,omitempty"`
	ListenersClosed []string `json:"listeners_closed,omitempty"`
	// Backends is what happened to the backends of each frontend that
	// was kept and whose backends changed.
	Backends map[string]BackendChange `json:"backends,omitempty"`
	// MaxLoopTask is the longest a loop spent on its reload task: the
	// most a reload held up any connection. LateLoops counts the loops
	// that had not run it within commitWait.
	MaxLoopTask time.Duration `json:"-"`
	LateLoops   int           `json:"late_loops,omitempty"`
}

// MarshalJSON writes MaxLoopTask as max_loop_task_seconds: splicer reports
// every duration in seconds, the unit in the name.
func (c Change) MarshalJSON() ([]byte, error) {
	type plain Change
	return json.Marshal(struct {
		plain
		MaxLoopTask float64 `json:"max_loop_task_seconds"`
	}{plain(c), c.MaxLoopTask.Seconds()})
}

// BackendChange names the backends a merge added, updated (weight, cap or
// backup flag), and removed (drained: their connections run on).
type BackendChange struct {
	Added   []string `json:"added,omitempty"`
	Updated []string `json:"updated,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// Plan is a reload prepared by Prepare: Commit applies it, Abort drops it.
// Exactly one of the two must be called.
type Plan struct {
	srv     *Server
	cfg     *config.Config
	current map[listenKey]*listenGroup // the registry when the plan began
	fronts  []*frontend
	changes []*generation
	removed []*frontend
	groups  map[listenKey]*listenGroup // the registry after the commit
	opened  []*listenGroup
	closing []listenKey // TCP groups closed; UDP ones drain
	report  Change
	ended   bool
}

// generation is one frontend's move to a new generation.
type generation struct {
	old, gen *frontend
	merge    *backend.MergePlan // nil when the member list stays as it is
	newSet   bool               // the Set is rebuilt (members or strategy changed)
}

// frontendList returns the current generation of every frontend, in
// config order. The slice is never modified; a reload replaces it.
func (s *Server) frontendList() []*frontend {
	s.frontMu.RLock()
	defer s.frontMu.RUnlock()
	return s.frontends
}

// Prepare readies the data plane for cfg without changing what it serves:
// it binds the addresses cfg adds, merges every changed frontend's
// backends by name (backend.Merge) and builds what the new generations
// need. Sockets of addresses that stay are kept. global.workers and the
// pipe settings cannot change here; the caller refuses such a config.
//
// One plan exists at a time: Prepare waits for the previous one to be
// committed or aborted. The loops are not held up meanwhile; what Prepare
// builds (sets, strategies, sockets) it builds on the caller's goroutine.
func (s *Server) Prepare(cfg *config.Config) (*Plan, error) {
	s.reloading.Lock()
	s.mu.Lock()
	serving := s.started && !s.closing
	current := maps.Clone(s.groups)
	s.mu.Unlock()
	if !serving {
		s.reloading.Unlock()
		return nil, errors.New("l4: reload of a server that is not serving")
	}
	p := &Plan{srv: s, cfg: cfg, current: current, groups: make(map[listenKey]*listenGroup)}
	old := make(map[string]*frontend)
	for _, fe := range s.frontendList() {
		old[fe.cfg.Name] = fe
	}
	kept := make(map[string]bool)
	for i := range cfg.Frontends {
		// Building a frontend's backend set takes CPU (a maglev table
		// is 65537 entries): let loops waiting for a P run between two.
		runtime.Gosched()
		fc := &cfg.Frontends[i]
		g, err := nextGeneration(old[fc.Name], fc)
		if err != nil {
			p.abort()
			return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
		}
		p.fronts = append(p.fronts, g.gen)
		switch {
		case g.old == nil:
			p.changes = append(p.changes, g)
			p.report.FrontendsAdded = append(p.report.FrontendsAdded, fc.Name)
		case g.old != g.gen:
			kept[fc.Name] = true
			p.changes = append(p.changes, g)
			p.report.FrontendsChanged = append(p.report.FrontendsChanged, fc.Name)
			if g.merge != nil && g.merge.Changed() {
				if p.report.Backends == nil {
					p.report.Backends = make(map[string]BackendChange)
				}
				p.report.Backends[fc.Name] = BackendChange{Added: g.merge.Added, Updated: g.merge.Updated, Removed: g.merge.Removed}
			}
		default:
			kept[fc.Name] = true
		}
		bound, err := p.listen(g.gen)
		if err != nil {
			p.abort()
			return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
		}
		if g.gen != g.old {
			// An unchanged frontend, published already, keeps its
			// own (equal) list.
			g.gen.bound = bound
		}
	}
	for name, fe := range old {
		if !kept[name] {
			p.removed = append(p.removed, fe)
			p.report.FrontendsRemoved = append(p.report.FrontendsRemoved, name)
		}
	}
	slices.Sort(p.report.FrontendsRemoved)
	for key, g := range current {
		if _, wanted := p.groups[key]; wanted {
			continue
		}
		if key.protocol == config.ProtocolUDP {
			// Closing a UDP socket would cut the replies of its open
			// flows: it drains until shutdown_timeout (retireUDP).
			if g.owner == "" {
				p.groups[key] = g // draining already
				continue
			}
			p.groups[key] = &listenGroup{key: key, bound: g.bound}
		}
		p.closing = append(p.closing, key)
		p.report.ListenersClosed = append(p.report.ListenersClosed, key.String())
	}
	slices.Sort(p.report.ListenersClosed)
	return p, nil
}

// nextGeneration returns what frontend fc is to be: prev itself when its
// config is unchanged, a new generation of it sharing its counters, or a
// new frontend when there is no prev (or its protocol changed, which makes
// it another frontend under the same name).
func nextGeneration(prev *frontend, fc *config.Frontend) (*generation, error) {
	if prev == nil || prev.cfg.Protocol != fc.Protocol {
		fe, err := newFrontend(fc)
		if err != nil {
			return nil, err
		}
		return &generation{gen: fe}, nil
	}
	if reflect.DeepEqual(prev.cfg, fc) {
		return &generation{old: prev, gen: prev}, nil
	}
	gen := &frontend{
		cfg: fc, frontendShared: prev.frontendShared,
		acl:      acl{allow: fc.Allow, deny: fc.Deny},
		clients:  prev.clients,
		observer: prev.observer,
	}
	if fc.MaxConnectionsPerClient != prev.cfg.MaxConnectionsPerClient ||
		fc.ConnectionRatePerClient != prev.cfg.ConnectionRatePerClient {
		// A new table: its counts start from the connections accepted
		// from now on.
		gen.clients = newClientTable(fc.MaxConnectionsPerClient, fc.ConnectionRatePerClient)
	}
	merge, err := backend.Merge(prev.backends, prev.specs, backendSpecs(fc))
	if err != nil {
		return nil, err
	}
	g := &generation{old: prev, gen: gen, merge: merge}
	g.newSet = len(merge.Added)+len(merge.Removed) > 0 || fc.Strategy != prev.cfg.Strategy ||
		fc.MaglevTableSize != prev.cfg.MaglevTableSize || fc.SlowStart != prev.cfg.SlowStart
	if g.newSet {
		if err := checkSetInputs(fc); err != nil {
			return nil, err
		}
	}
	gen.backends, gen.specs = merge.Backends, merge.Specs
	gen.send = newProxySend(fc, gen.backends)
	if !g.newSet {
		// Same members and strategy: the Set carries on, and the
		// weight and cap changes rebuild its snapshot when applied.
		gen.set, gen.strategy, gen.peers = prev.set, prev.strategy, prev.peers
	}
	return g, nil
}

// checkSetInputs refuses, in Prepare, what buildSet would refuse in
// Commit, which cannot fail: a strategy or slow start the loader would
// have refused, in a config built by hand.
func checkSetInputs(fc *config.Frontend) error {
	if _, err := balance.New(fc.Strategy, balance.Options{MaglevTableSize: fc.MaglevTableSize}); err != nil {
		return err
	}
	if fc.SlowStart < 0 {
		return fmt.Errorf("negative slow start %v: %w", fc.SlowStart, backend.ErrInvalid)
	}
	return nil
}

// listen finds or opens the sockets of every address of fe, generation of
// a frontend about to be committed, and returns the addresses they are
// bound to.
func (p *Plan) listen(fe *frontend) ([]netip.AddrPort, error) {
	s := p.srv
	var bound []netip.AddrPort
	for i, addr := range fe.cfg.Listen {
		key := keyOf(fe.cfg, i)
		if g := p.current[key]; g != nil {
			p.groups[key] = &listenGroup{key: key, bound: g.bound, owner: fe.cfg.Name}
			bound = append(bound, g.bound)
			continue
		}
		g, err := s.openGroup(fe, key, nil)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		g.owner = fe.cfg.Name
		p.groups[key] = g
		p.opened = append(p.opened, g)
		p.report.ListenersOpened = append(p.report.ListenersOpened, key.String())
		bound = append(bound, g.bound)
	}
	return bound, nil
}

// Backends returns the backends frontend name will have once the plan is
// committed (nil for a frontend the config lacks), for the health checks
// to be built on before the commit.
func (p *Plan) Backends(name string) []*backend.Backend {
	for _, fe := range p.fronts {
		if fe.cfg.Name == name {
			return fe.backends
		}
	}
	return nil
}

// Observe sets the observer of frontend name's new generation; without a
// call, a changed frontend keeps the observer it had. Call it before Commit.
// The observer of a frontend the plan leaves unchanged cannot change: the
// loops read it without synchronisation.
func (p *Plan) Observe(name string, o Observer) error {
	for _, g := range p.changes {
		if g.gen.cfg.Name == name {
			g.gen.observer = o
			return nil
		}
	}
	for _, fe := range p.fronts {
		if fe.cfg.Name == name {
			if fe.observer == o {
				return nil
			}
			return fmt.Errorf("frontend %q is unchanged: its observer cannot change", name)
		}
	}
	return ErrUnknownFrontend
}

// Report is what the plan changes; after Commit it includes the loop
// task figures.
func (p *Plan) Report() Change { return p.report }

// Abort drops the plan: the sockets it opened are closed and nothing else
// has changed.
func (p *Plan) Abort() { p.abort() }

func (p *Plan) abort() {
	if p.ended {
		return
	}
	p.ended = true
	defer p.srv.reloading.Unlock()
	for _, g := range p.opened {
		g.closeFrom(0)
	}
	for _, g := range p.changes {
		if g.old == nil {
			g.gen.set.Close()
		}
	}
}

// Commit applies the plan: backend changes are made, the new frontends
// published, and each loop runs one task that moves its listeners to their
// frontends' new generations, closes the TCP listeners of addresses that
// went, lets the UDP ones drain, and adopts the new sockets. Connections
// of removed frontends drain until the config's shutdown_timeout, then are
// cut. Commit returns once every loop ran its task, or commitWait passed.
func (p *Plan) Commit() Change {
	s := p.srv
	if p.ended {
		return p.report
	}
	p.ended = true
	defer s.reloading.Unlock()
	for _, g := range p.changes {
		runtime.Gosched() // as in Prepare
		if g.merge != nil {
			g.merge.Apply()
		}
		if g.newSet {
			if err := g.gen.buildSet(); err != nil {
				// Prepare checked every input buildSet takes.
				s.log.Error().Err(err).Str("frontend", g.gen.cfg.Name).Msg("reload: building the backend set")
			}
		}
	}
	s.frontMu.Lock()
	s.frontends = p.fronts
	s.frontMu.Unlock()
	for _, g := range p.changes {
		if g.old != nil {
			// Shared with the old generation: its open connections
			// are logged under the new choice too.
			g.gen.logPolicy.Store(newLogPolicy(g.gen.cfg))
		}
	}

	// What each loop does with a listener, by protocol and bound address.
	type action struct {
		fe    *frontend // the generation to serve; nil: close (TCP) or drain (UDP)
		close bool
	}
	actions := make(map[boundKey]action)
	gens := make(map[string]*frontend, len(p.fronts))
	for _, fe := range p.fronts {
		gens[fe.cfg.Name] = fe
	}
	s.mu.Lock()
	for key, g := range s.groups {
		if ng := p.groups[key]; ng != nil && ng.owner != "" {
			actions[boundKey{key.protocol, g.bound}] = action{fe: gens[ng.owner]}
		} else if g.owner != "" {
			actions[boundKey{key.protocol, g.bound}] = action{close: true}
		}
	}
	s.groups = p.groups
	s.cfg = p.cfg
	s.maxConns.Store(int64(p.cfg.Global.MaxConnections))
	loops := s.loops
	s.mu.Unlock()

	durations := make([]time.Duration, len(loops))
	done := make([]chan struct{}, len(loops))
	for i, l := range loops {
		done[i] = make(chan struct{})
		l.post(func(l *loop) {
			defer close(done[i])
			start := time.Now()
			keep := l.listeners[:0]
			for _, ln := range l.listeners {
				a, ok := actions[boundKey{config.ProtocolTCP, ln.addr}]
				switch {
				case !ok:
					keep = append(keep, ln)
				case a.close:
					ln.close()
				default:
					if keepaliveChanged(ln.fe.cfg, a.fe.cfg) {
						a.fe.retuneKeepalive(ln.fd)
					}
					ln.fe = a.fe
					keep = append(keep, ln)
					if ln.full {
						// The new generation's cap may have room:
						// look again on the next turn.
						ln.full = false
						l.again = append(l.again, ln)
					}
				}
			}
			clear(l.listeners[len(keep):])
			l.listeners = keep
			for _, ln := range l.udp {
				a, ok := actions[boundKey{config.ProtocolUDP, ln.addr}]
				switch {
				case !ok:
				case a.close:
					ln.drain()
				default:
					ln.fe, ln.draining = a.fe, false
				}
			}
			for _, g := range p.opened {
				for j := i; j < len(g.fds); j += len(loops) {
					if err := l.adopt(gens[g.owner], g.fds[j], g.bound); err != nil {
						s.log.Error().Err(err).Str("listen", g.key.String()).Int("loop", l.id).Msg("reload: registering a new listener")
					}
				}
			}
			durations[i] = time.Since(start)
		})
	}
	deadline := time.NewTimer(commitWait)
	defer deadline.Stop()
	for i, l := range loops {
		select {
		case <-done[i]:
		case <-l.exited:
		case <-deadline.C:
			p.report.LateLoops = len(loops) - i
			s.log.Warn().Int("loops", p.report.LateLoops).Float64("waited_seconds", commitWait.Seconds()).
				Msg("reload: loops have not run their reload task yet; they will when they run")
		}
		if p.report.LateLoops > 0 {
			break
		}
	}
	for i := range loops {
		select {
		case <-done[i]:
			p.report.MaxLoopTask = max(p.report.MaxLoopTask, durations[i])
		default:
		}
	}
	for _, g := range p.opened {
		g.fds = nil // the loops own them
	}
	for _, g := range p.changes {
		if g.old != nil && g.newSet {
			g.old.set.Close()
		}
	}
	drain := p.cfg.Global.ShutdownTimeout
	for _, fe := range p.removed {
		fe.set.Close()
		sh, name := fe.frontendShared, fe.cfg.Name
		s.afterDrain(drain, func() { s.cutConnections(name, sh) })
	}
	for _, key := range p.closing {
		if g := p.groups[key]; g != nil {
			s.afterDrain(drain, func() { s.closeDrained(g) })
		}
	}
	return p.report
}

// retuneKeepalive applies fe's keepalive settings to a listener that had
// other ones, turning keepalive off if fe has it off.
func (fe *frontend) retuneKeepalive(fd int) {
	if !fe.cfg.TCPKeepalive {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0)
		return
	}
	fe.setKeepalive(fd)
}

// keepaliveChanged reports whether b's keepalive settings differ from a's:
// a listener passes them on to the sockets it accepts.
func keepaliveChanged(a, b *config.Frontend) bool {
	return a.TCPKeepalive != b.TCPKeepalive || a.KeepaliveIdle != b.KeepaliveIdle ||
		a.KeepaliveInterval != b.KeepaliveInterval || a.KeepaliveCount != b.KeepaliveCount
}

// afterDrain runs f once a drain of d has passed, unless the server stops
// first (stopping closes everything anyway).
func (s *Server) afterDrain(d time.Duration, f func()) {
	s.drainFuncs.Add(1)
	t := time.AfterFunc(d, func() {
		defer s.drainFuncs.Done()
		f()
	})
	s.mu.Lock()
	s.retired = append(s.retired, t)
	s.mu.Unlock()
}

// cutConnections closes the connections of a removed frontend that
// outlived the drain.
func (s *Server) cutConnections(name string, sh *frontendShared) {
	var n int
	s.eachLoop(func(l *loop) {
		for c := range l.liveConns() {
			if c.fe.frontendShared == sh {
				c.end(CauseShutdown)
				n++
			}
		}
	})
	if n > 0 {
		s.log.Warn().Str("frontend", name).Int("connections", n).
			Msg("removed frontend: connections still open at shutdown_timeout closed")
	}
}

// closeDrained closes the UDP sockets of g, an address a reload removed,
// with the flows still open on them, unless a later reload took the
// address up again.
func (s *Server) closeDrained(g *listenGroup) {
	// Not while a plan is open: it may be taking the address up again.
	s.reloading.Lock()
	defer s.reloading.Unlock()
	s.mu.Lock()
	current := s.groups[g.key] == g
	if current {
		delete(s.groups, g.key)
	}
	s.mu.Unlock()
	if !current {
		return
	}
	var flows int
	s.eachLoop(func(l *loop) {
		keep := l.udp[:0]
		for _, ln := range l.udp {
			if ln.addr == g.bound && ln.draining {
				flows += len(ln.flows)
				ln.close()
				continue
			}
			keep = append(keep, ln)
		}
		clear(l.udp[len(keep):])
		l.udp = keep
	})
	if flows > 0 {
		s.log.Warn().Str("listen", g.key.String()).Int("flows", flows).
			Msg("removed address: UDP flows still open at shutdown_timeout closed")
	}
}
