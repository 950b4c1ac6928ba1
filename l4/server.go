package l4

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/l4/internal/splice"
	"github.com/splicerlb/splicer/pkg/config"
)

// ErrServerClosed is returned by Start and Shutdown once the server has been
// shut down or closed.
var ErrServerClosed = errors.New("l4: server closed")

// Server serves every frontend of a config, TCP and UDP.
//
// Its life: NewServer builds the frontends (strategies, backend sets) and
// binds nothing; Observe attaches each frontend's observer (passive
// health), SetLogOutput and SetLogFormat the connection log, and Inherit
// the listening sockets of a process being replaced, all before Start;
// Start binds what was not inherited and runs the loops; then Shutdown
// (stop accepting, let connections finish until its context ends) or
// Close (at once). A reload goes through Prepare and the Plan's Commit or
// Abort while it serves; an upgrade through HandOff and Handoff on the
// old process, Adopt on the new one.
//
// Every exported method is safe to call from any goroutine, with the
// order above: Observe, SetLogOutput, SetLogFormat and Inherit only before
// Start. A method that needs a loop's state posts it a task and waits.
type Server struct {
	cfg   *config.Config
	log   zerolog.Logger
	pipes *splice.Pool

	// frontends is replaced whole by a reload (copy-on-write) under
	// frontMu; readers take the slice under the read lock.
	frontMu   sync.RWMutex
	frontends []*frontend
	loops     []*loop
	wg        sync.WaitGroup // one per running loop goroutine

	mu       sync.Mutex // guards state changes below
	started  bool
	closing  bool
	drained  chan struct{} // closed when active reaches 0 after closing
	drainOne sync.Once
	// groups are the listening sockets by configured address, for reload
	// and upgrade (reload.go, inherit.go); inherited holds the sockets
	// handed over by a previous process until Start adopts them.
	groups    map[listenKey]*listenGroup
	inherited map[listenKey][]int
	// reloading is held from Prepare to the plan's Commit or Abort.
	reloading sync.Mutex
	// retired holds the cut timers of removed frontends' connections;
	// drainFuncs counts those not stopped and not yet run to their end,
	// which stopping waits for: none runs after Close returns.
	retired    []*time.Timer
	drainFuncs sync.WaitGroup

	// connlog is the connection log (connlog.go).
	connlog *connLog

	// maxConns is global.max_connections, which a reload may change.
	maxConns atomic.Int64

	// backendPollFault, when set, fails the registration of backend
	// sockets with the loops' pollers (pollfault.go): a test seam.
	backendPollFault atomic.Pointer[func() error]

	// active counts client connections across all loops.
	active atomic.Int64
	// flows counts UDP flows across all loops; a graceful shutdown waits
	// for them as for connections.
	flows atomic.Int64
	// nextID numbers connections for the admin API.
	nextID atomic.Uint64
	// stopping is set when Shutdown or Close begins.
	stopping atomic.Bool
	// blocked is set while some listener has stopped accepting at the
	// global cap; the next release anywhere resumes it. A frontend's own
	// cap has its own flag (frontend.blocked).
	blocked atomic.Bool
}

// NewServer prepares a server for cfg's frontends: backend sets and
// strategies are built, nothing is bound yet.
func NewServer(cfg *config.Config, log zerolog.Logger) (*Server, error) {
	s := &Server{
		cfg:     cfg,
		log:     log,
		drained: make(chan struct{}),
		pipes:   splice.NewPool(cfg.Global.MaxPipes, cfg.Global.PipeSize, cfg.Global.BufferSize),
		groups:  make(map[listenKey]*listenGroup),
	}
	s.maxConns.Store(int64(cfg.Global.MaxConnections))
	s.connlog = newConnLog(s, cfg.Global.Workers, max(cfg.Log.ConnectionsBuffer, 1))
	s.pipes.OnSmallPipe(func(granted, requested int, usable bool) {
		e := s.log.Warn().Int("granted_bytes", granted).Int("requested_bytes", requested).Bool("used", usable)
		if usable {
			e.Msg("the kernel grants pipes smaller than pipe_size (fs.pipe-max-size?); splicing through smaller pipes")
			return
		}
		e.Msg("the kernel grants pipes too small to splice through (fs.pipe-user-pages-soft reached?); copying through buffers, asking again later")
	})
	for i := range cfg.Frontends {
		fc := &cfg.Frontends[i]
		fe, err := newFrontend(fc)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
		}
		s.frontends = append(s.frontends, fe)
	}
	return s, nil
}

// Start binds every listener on every loop and starts the loops. On error
// nothing stays bound. Start may be called once.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrServerClosed
	}
	if s.started {
		return errors.New("l4: server already started")
	}
	workers := s.cfg.Global.Workers
	cpus, err := loopCPUs(s.cfg.Global.CPUAffinity, workers)
	if err != nil {
		return err
	}
	for i := 0; i < workers; i++ {
		l, err := newLoop(i, s)
		if err != nil {
			s.closeLoopsLocked()
			return err
		}
		if cpus != nil {
			l.cpu = cpus[i]
		}
		s.loops = append(s.loops, l)
	}
	if err := s.bindLocked(); err != nil {
		s.closeLoopsLocked()
		s.closeInheritedLocked()
		return err
	}
	s.closeInheritedLocked()
	s.started = true
	s.connlog.start()
	pinned := make(chan error, len(s.loops))
	for _, l := range s.loops {
		s.wg.Add(1)
		go l.run(&s.wg, pinned)
	}
	if cpus != nil {
		if err := s.awaitPinsLocked(pinned); err != nil {
			return err
		}
	}
	for _, fe := range s.frontends {
		s.log.Info().Str("frontend", fe.cfg.Name).Strs("listen", addrStrings(fe.bound)).
			Str("strategy", fe.cfg.Strategy).Int("backends", len(fe.cfg.Backends)).Msg("frontend listening")
	}
	return nil
}

// awaitPinsLocked waits for every loop to report its pinning. When one
// failed, the server is closed, as Close would, and the error returned.
func (s *Server) awaitPinsLocked(pinned <-chan error) error {
	var errs []error
	for range s.loops {
		errs = append(errs, <-pinned)
	}
	if err := errors.Join(errs...); err != nil {
		s.closing = true
		s.stopping.Store(true)
		s.postAll(func(l *loop) { l.stop() })
		s.wg.Wait()
		for _, fe := range s.frontends {
			fe.set.Close()
		}
		return err
	}
	cpus := make([]int, len(s.loops))
	for i, l := range s.loops {
		cpus[i] = l.cpu
	}
	e := s.log.Info().Ints("cpus", cpus)
	if !steersByCPU() {
		e.Msg("event loops pinned; this kernel does not steer new connections by CPU (Linux 6.2 and later do), so the kernel spreads them over the loops by hash")
		return nil
	}
	e.Msg("event loops pinned, each TCP connection served by the loop on the CPU that received it")
	return nil
}

// bindLocked opens one listening socket per loop for every frontend
// address, or adopts the sockets inherited for it (inherit.go). A port 0
// address is resolved by the first bind and reused by the others, so all
// loops share one port.
func (s *Server) bindLocked() error {
	for _, fe := range s.frontends {
		for i, addr := range fe.cfg.Listen {
			key := keyOf(fe.cfg, i)
			g, err := s.openGroup(fe, key, s.inherited[key])
			delete(s.inherited, key)
			if err != nil {
				return fmt.Errorf("frontend %q: listen %s: %w", fe.cfg.Name, addr, err)
			}
			g.owner = fe.cfg.Name
			for i, fd := range g.fds {
				if err := s.loops[i%len(s.loops)].adopt(fe, fd, g.bound); err != nil {
					g.closeFrom(i + 1)
					return fmt.Errorf("frontend %q: listen %s: %w", fe.cfg.Name, addr, err)
				}
			}
			g.fds = nil // the loops own them now
			s.groups[key] = g
			fe.bound = append(fe.bound, g.bound)
		}
	}
	return nil
}

// closeLoopsLocked releases loops that never started running.
func (s *Server) closeLoopsLocked() {
	for _, l := range s.loops {
		l.release()
	}
	s.loops = nil
}

// Addrs returns the addresses frontend name is bound to (ports resolved),
// or nil for an unknown name or before Start.
func (s *Server) Addrs(name string) []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fe := s.frontend(name); fe != nil {
		return append([]netip.AddrPort(nil), fe.bound...)
	}
	return nil
}

// Started reports whether the listeners are bound and the loops serving,
// and the server not yet shutting down.
func (s *Server) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started && !s.closing
}

// ActiveConnections is the number of client connections being served.
func (s *Server) ActiveConnections() int64 { return s.active.Load() }

// PipesInUse is the number of splice pipes held by connections right now.
func (s *Server) PipesInUse() int { return s.pipes.PipesInUse() }

// SmallPipes counts the pipes the kernel granted below global.pipe_size.
func (s *Server) SmallPipes() uint64 { return s.pipes.SmallPipes() }

// Shutdown stops accepting, then waits for open connections to finish until
// ctx ends, and finally closes whatever is left and stops the loops. When
// connections had to be cut, the error wraps ctx's error and says how many.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.beginClosing() {
		return ErrServerClosed
	}
	s.postAll(func(l *loop) { l.closeListeners() })
	var err error
	select {
	case <-s.drained:
	case <-ctx.Done():
		err = fmt.Errorf("%w: %d connections closed", ctx.Err(), s.active.Load())
		if n := s.flows.Load(); n > 0 {
			err = fmt.Errorf("%w, and %d UDP flows", err, n)
		}
	}
	s.stopLoops()
	return err
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	if !s.beginClosing() {
		return ErrServerClosed
	}
	s.stopLoops()
	return nil
}

// beginClosing flips the server into closing; false when it already was.
func (s *Server) beginClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.closing = true
	s.stopping.Store(true)
	if s.active.Load() == 0 && s.flows.Load() == 0 {
		s.drainOne.Do(func() { close(s.drained) })
	}
	return true
}

// checkDrained closes drained once nothing is left to wait for after
// closing began.
func (s *Server) checkDrained() {
	if s.active.Load() != 0 || s.flows.Load() != 0 {
		return
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		s.drainOne.Do(func() { close(s.drained) })
	}
}

// flowDone counts a UDP flow as ended.
func (s *Server) flowDone() {
	if s.flows.Add(-1) == 0 {
		s.checkDrained()
	}
}

// Which cap, if any, refused a reservation.
const (
	capNone     = iota // reserved
	capGlobal          // global.max_connections, or shutting down
	capFrontend        // the frontend's max_connections
)

// stopLoops asks every loop to close its fds and exit, and waits for them.
func (s *Server) stopLoops() {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	s.mu.Lock()
	for _, t := range s.retired {
		if t.Stop() {
			s.drainFuncs.Done() // will never run
		}
	}
	s.retired = nil
	s.mu.Unlock()
	if started {
		s.postAll(func(l *loop) { l.stop() })
		s.wg.Wait()
		// After the loops: the lines of the connections they closed
		// are written too.
		s.connlog.stop()
	} else {
		s.mu.Lock()
		s.closeLoopsLocked()
		s.closeInheritedLocked()
		s.mu.Unlock()
		s.connlog.stop() // closes the output
	}
	// One that fired before the Stop ends once the loops have stopped.
	s.drainFuncs.Wait()
	for _, fe := range s.frontendList() {
		fe.set.Close()
	}
}

// postAll runs f on every loop, each on its own goroutine.
func (s *Server) postAll(f func(*loop)) {
	for _, l := range s.loops {
		l.post(f)
	}
}

func addrStrings(addrs []netip.AddrPort) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
