package daemon

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/health"
	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// checks is the health checking of every frontend: one Scheduler per
// frontend with an active check or passive_fall (a passive-only one when
// the check is "none"), fed by the data plane's passive reports where
// passive_fall or probe_when_idle_only is set. A reload replaces the scheduler of a frontend whose
// backends or check settings changed, and only those (healthPlan).
type checks struct {
	srv *l4.Server
	log zerolog.Logger

	ctx    context.Context // parent of every scheduler's run; cancelled by stop
	cancel context.CancelFunc

	mu      sync.Mutex
	running map[string]*check // by frontend
	pending *healthPlan       // the first plan, started by start
}

// check is one frontend's scheduler and what it was built from.
type check struct {
	sched    *health.Scheduler
	health   config.Health
	onDown   string
	protocol string
	backends []*backend.Backend
	// proxy is what PROXY header each backend's probes open with.
	proxy health.ProxyHeaders
	// checker is the active checker (nil for a passive-only scheduler),
	// whose secrets a reload reads again (secrets.go).
	checker health.Checker
	cancel  context.CancelFunc
	done    chan struct{}
}

// newChecks builds the schedulers for cfg's frontends and connects them to
// srv: passive reports in, on_down = "close" out. Nothing runs until start.
func newChecks(cfg *config.Config, srv *l4.Server, log zerolog.Logger) (*checks, error) {
	ctx, cancel := context.WithCancel(context.Background())
	hc := &checks{srv: srv, log: log, ctx: ctx, cancel: cancel, running: make(map[string]*check)}
	p, err := hc.prepare(cfg, srv.Backends, srv.Observe)
	if err != nil {
		cancel()
		return nil, err
	}
	hc.pending = p
	return hc, nil
}

// scheduler returns frontend name's scheduler, nil when it has none.
func (hc *checks) scheduler(name string) *health.Scheduler {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if c := hc.running[name]; c != nil {
		return c.sched
	}
	return nil
}

// probing reports whether frontend name's scheduler sends probes: it has
// one, and not a passive-only one.
func (hc *checks) probing(name string) bool {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	c := hc.running[name]
	return c != nil && c.checker != nil
}

// healthPlan is the change of schedulers a config brings: new ones to
// start, running ones to stop, and which new ones take over the state of
// the one they replace (same check settings: only the backends changed).
type healthPlan struct {
	hc      *checks
	start   map[string]*check
	stop    map[string]*check
	inherit map[string]*check
}

// prepare plans the schedulers of cfg's frontends, whose backends will be
// backendsOf(name); observe connects a frontend's passive reports.
// Frontends whose check settings and backends are unchanged keep theirs.
func (hc *checks) prepare(cfg *config.Config, backendsOf func(string) []*backend.Backend,
	observe func(string, l4.Observer) error) (*healthPlan, error) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	p := &healthPlan{hc: hc, start: map[string]*check{}, stop: map[string]*check{}, inherit: map[string]*check{}}
	for i := range cfg.Frontends {
		fe := &cfg.Frontends[i]
		old := hc.running[fe.Name]
		bs := backendsOf(fe.Name)
		if fe.Health.Check == config.CheckNone && fe.Health.PassiveFall == 0 {
			if old != nil {
				p.stop[fe.Name] = old
				if err := observe(fe.Name, nil); err != nil {
					return nil, err
				}
			}
			continue
		}
		proxy := proxyHeaders(fe, bs)
		sameChecks := old != nil && reflect.DeepEqual(old.health, fe.Health) && old.protocol == fe.Protocol &&
			maps.Equal(old.proxy, proxy)
		if sameChecks && old.onDown == fe.OnDown && slices.Equal(old.backends, bs) {
			continue // the frontend keeps its scheduler
		}
		s, checker, err := newScheduler(fe, bs, proxy, hc.onChange(fe), hc.log.With().Str("frontend", fe.Name).Logger())
		if err != nil {
			return nil, fmt.Errorf("frontend %q: health: %w", fe.Name, err)
		}
		var o l4.Observer
		if fe.Health.PassiveFall > 0 || fe.Health.ProbeWhenIdleOnly {
			// Passive detection, and the traffic that lets
			// probe_when_idle_only skip a probe, both come from it.
			o = passive{s}
		}
		if err := observe(fe.Name, o); err != nil {
			return nil, fmt.Errorf("frontend %q: %w", fe.Name, err)
		}
		p.start[fe.Name] = &check{sched: s, checker: checker, health: fe.Health, onDown: fe.OnDown, protocol: fe.Protocol,
			backends: bs, proxy: proxy}
		if old != nil {
			p.stop[fe.Name] = old
			if sameChecks {
				p.inherit[fe.Name] = old
			}
		}
	}
	for name, old := range hc.running {
		if frontendConfig(cfg, name) == nil {
			p.stop[name] = old
		}
	}
	return p, nil
}

// onChange is what a flip of fe's backends does beyond the snapshot: with
// on_down = "close", a backend going down has its connections closed.
func (hc *checks) onChange(fe *config.Frontend) func(*backend.Backend, bool, health.Result) int {
	if fe.OnDown != config.OnDownClose {
		return nil
	}
	name, srv := fe.Name, hc.srv
	return func(b *backend.Backend, up bool, _ health.Result) int {
		if up {
			return 0
		}
		// An unknown frontend (removed by a reload since) has nothing
		// left to close.
		n, _ := srv.CloseBackendConnections(name, b)
		return n
	}
}

// stopOld stops the schedulers the plan replaces or removes and waits for
// them.
func (p *healthPlan) stopOld() {
	p.hc.mu.Lock()
	for name, c := range p.stop {
		if p.hc.running[name] == c {
			delete(p.hc.running, name)
		}
	}
	p.hc.mu.Unlock()
	for _, c := range p.stop {
		c.cancel()
		<-c.done
	}
}

// startNew starts the plan's new schedulers, each having first taken over
// the state of the one it replaces when the check settings are unchanged.
func (p *healthPlan) startNew() {
	hc := p.hc
	hc.mu.Lock()
	defer hc.mu.Unlock()
	for name, c := range p.start {
		if old := p.inherit[name]; old != nil {
			c.sched.Inherit(old.sched)
		} else if old := p.stop[name]; old != nil {
			// New check settings: a fresh verdict, but the probe
			// counters of kept backends go on rising.
			c.sched.InheritCounters(old.sched)
		}
		ctx, cancel := context.WithCancel(hc.ctx)
		c.cancel, c.done = cancel, make(chan struct{})
		go runScheduler(ctx, c)
		hc.running[name] = c
	}
}

// runScheduler runs one frontend's scheduler until ctx ends.
func runScheduler(ctx context.Context, c *check) {
	defer close(c.done)
	// Run returns only ErrStarted, which cannot happen: each scheduler is
	// run once, here.
	_ = c.sched.Run(ctx)
}

// newScheduler builds fe's Scheduler: passive-only for check "none",
// else probing with fe's checker, which it returns too (nil for "none").
func newScheduler(fe *config.Frontend, bs []*backend.Backend, proxy health.ProxyHeaders,
	onChange func(*backend.Backend, bool, health.Result) int, log zerolog.Logger) (*health.Scheduler, health.Checker, error) {
	if fe.Health.Check == config.CheckNone {
		s, err := health.NewPassive(fe.Health, bs, onChange, log)
		return s, nil, err
	}
	checker, err := newChecker(fe, proxy)
	if err != nil {
		return nil, nil, err
	}
	s, err := health.New(fe.Health, checker, bs, onChange, log)
	return s, checker, err
}

func newChecker(fe *config.Frontend, proxy health.ProxyHeaders) (health.Checker, error) {
	if fe.Protocol == config.ProtocolUDP {
		return health.NewUDPChecker(fe.Health)
	}
	return health.NewChecker(fe.Health, health.WithProxyHeaders(proxy))
}

// proxyHeaders names fe's backends (bs) that the data plane sends a PROXY
// header to, with its version, so that their probes open with a check's
// header too; nil when there are none. A backend's own send_proxy, when
// the config gives it one, wins over the frontend's.
func proxyHeaders(fe *config.Frontend, bs []*backend.Backend) health.ProxyHeaders {
	if fe.Protocol != config.ProtocolTCP {
		return nil
	}
	own := make(map[string]config.Backend, len(fe.Backends))
	for _, b := range fe.Backends {
		own[b.Name] = b
	}
	var p health.ProxyHeaders
	for _, b := range bs {
		v := fe.SendProxy
		if cb, ok := own[b.Name()]; ok && cb.Address == b.Address() && cb.SendProxy != "" {
			v = cb.SendProxy
		}
		n := 0
		switch v {
		case config.ProxyV1:
			n = 1
		case config.ProxyV2:
			n = 2
		}
		if n != 0 {
			if p == nil {
				p = make(health.ProxyHeaders)
			}
			p[b.Address()] = n
		}
	}
	return p
}

// start runs the schedulers planned at newChecks.
func (hc *checks) start() {
	if p := hc.pending; p != nil {
		hc.pending = nil
		p.startNew()
	}
}

// stop ends every probe and waits for the schedulers' goroutines.
func (hc *checks) stop() {
	hc.cancel()
	hc.mu.Lock()
	running := hc.running
	hc.running = map[string]*check{}
	hc.mu.Unlock()
	for _, c := range running {
		<-c.done
	}
}

// passive turns the data plane's observations into passive health reports.
type passive struct{ s *health.Scheduler }

// failCauses are the passive failure messages by reason, built once so the
// event loops report a failure without allocating.
var failCauses = func() (c [backend.NumFailReasons]string) {
	for r := range c {
		c[r] = "connect " + backend.FailReason(r).String()
	}
	return c
}()

func (p passive) ConnectFailed(b *backend.Backend, reason backend.FailReason) {
	cause := "connect failed"
	if int(reason) < len(failCauses) {
		cause = failCauses[reason]
	}
	p.s.ReportFailure(b, cause)
}

func (p passive) Reset(b *backend.Backend) { p.s.ReportFailure(b, "connection reset by backend") }

func (p passive) Served(b *backend.Backend) { p.s.ReportSuccess(b) }
