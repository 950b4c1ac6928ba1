package daemon

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/discovery"
)

// discoveryStartWait bounds how long New (or a reload that starts a
// source) waits for every new discovery source's first answer before the
// data plane is built on it: long enough for a Sentinel or a DNS server on
// the network to answer, short enough that a dead one does not hold the
// start. A frontend without an answer starts with its static backends
// only (none for a discovery table), refusing clients (no_backend) until
// the answer comes.
const discoveryStartWait = 2 * time.Second

// discoveries runs the discovery source of every frontend that has one:
// Redis Sentinel, DNS records, or the host names of its backends. What a
// source finds becomes the frontend's backends through setBackends, the
// path a config reload takes too, so counters, health state, drains and
// open connections survive a change.
type discoveries struct {
	log zerolog.Logger
	wg  sync.WaitGroup // every source's goroutine, and late applies

	// mu guards byFE: reloads change it (holding the daemon's ctl), the
	// metrics read it.
	mu   sync.Mutex
	byFE map[string]*discovered
}

// discovered is one frontend fed by a discovery source.
type discovered struct {
	fe     string
	spec   sourceSpec
	src    discovery.Source
	cancel context.CancelFunc
	log    zerolog.Logger

	mu sync.Mutex
	// static is the frontend's backends with an IP address, from the
	// config in force: a frontend mixing them with host names serves
	// both.
	static []config.Backend
	latest []config.Backend // the source's last answer
	d      *Daemon          // set once live: answers go to setBackends from then on
	// retired is set, holding the daemon's ctl, when a reload replaced or
	// removed the source: an answer of its still on its way is dropped.
	retired bool
}

// sourceSpec is what a frontend's source is built from; a reload that
// changes it replaces the source.
type sourceSpec struct {
	discovery *config.Discovery
	hosts     []config.Backend // backends given by host name
	dns       config.DNS       // for the hosts
}

// specOf returns what fe's source is built from; false when fe has none.
func specOf(cfg *config.Config, fe *config.Frontend) (sourceSpec, bool) {
	s := sourceSpec{discovery: fe.Discovery}
	for _, b := range fe.Backends {
		if b.Host != "" {
			s.hosts = append(s.hosts, b)
		}
	}
	if len(s.hosts) > 0 {
		s.dns = cfg.DNS
	}
	return s, s.discovery != nil || len(s.hosts) > 0
}

// staticOf is fe's backends given by IP address.
func staticOf(fe *config.Frontend) []config.Backend {
	var out []config.Backend
	for _, b := range fe.Backends {
		if b.Host == "" {
			out = append(out, b)
		}
	}
	return out
}

// startDiscoveries starts the sources of cfg's frontends, waits up to
// discoveryStartWait for their first answers, and returns cfg with those
// answers in the frontends' backends (cfg itself when no frontend has a
// source), ready for New to build the data plane on.
func startDiscoveries(cfg *config.Config, log zerolog.Logger) (*discoveries, *config.Config, error) {
	ds := &discoveries{log: log, byFE: make(map[string]*discovered)}
	var started []*discovered
	for i := range cfg.Frontends {
		x, err := ds.newDiscovered(cfg, &cfg.Frontends[i])
		if err != nil {
			ds.stop()
			return nil, nil, err
		}
		if x != nil {
			ds.byFE[x.fe] = x
			started = append(started, x)
		}
	}
	if len(started) == 0 {
		return ds, cfg, nil
	}
	waitReady(started)
	out := *cfg
	out.Frontends = slices.Clone(cfg.Frontends)
	for _, x := range started {
		frontendOf(&out, x.fe).Backends = x.expand()
	}
	return ds, &out, nil
}

// newDiscovered builds and starts the source of frontend fe of cfg; nil
// when fe has none. Its answers are kept, not applied, until it goes live.
func (ds *discoveries) newDiscovered(cfg *config.Config, fe *config.Frontend) (*discovered, error) {
	spec, ok := specOf(cfg, fe)
	if !ok {
		return nil, nil
	}
	log := ds.log.With().Str("frontend", fe.Name).Logger()
	src, err := discovery.NewSource(fe, cfg.DNS, log)
	if err != nil {
		return nil, fmt.Errorf("frontend %q: %w", fe.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &discovered{fe: fe.Name, spec: spec, src: src, cancel: cancel, log: log, static: staticOf(fe)}
	ds.wg.Go(func() { src.Run(ctx, func(found []config.Backend) { x.report(found) }) })
	return x, nil
}

// waitReady waits up to discoveryStartWait for the first answer of each
// of xs.
func waitReady(xs []*discovered) {
	deadline := time.After(discoveryStartWait)
	for _, x := range xs {
		select {
		case <-x.src.Ready():
		case <-deadline:
			x.log.Warn().Msg("no discovery answer yet: the frontend serves without what it will find")
		}
	}
}

// expand is the frontend's backends: its static ones, then those the
// source found.
func (x *discovered) expand() []config.Backend {
	x.mu.Lock()
	static := x.static
	x.mu.Unlock()
	return x.expandWith(static)
}

// expandWith is static, then the backends the source found (one named
// like a static one is left out).
func (x *discovered) expandWith(static []config.Backend) []config.Backend {
	x.mu.Lock()
	latest := x.latest
	x.mu.Unlock()
	out := slices.Clone(static)
	for _, b := range latest {
		if !slices.ContainsFunc(static, func(s config.Backend) bool { return s.Name == b.Name }) {
			out = append(out, b)
		}
	}
	return out
}

// goLive sends every later answer to d, and the answers that came since
// New built the data plane at once.
func (ds *discoveries) goLive(d *Daemon) {
	ds.mu.Lock()
	list := make([]*discovered, 0, len(ds.byFE))
	for _, x := range ds.byFE {
		list = append(list, x)
	}
	ds.mu.Unlock()
	for _, x := range list {
		x.mu.Lock()
		x.d = d
		x.mu.Unlock()
		x.apply(d)
	}
}

// stop ends every source and waits for them.
func (ds *discoveries) stop() {
	ds.mu.Lock()
	for _, x := range ds.byFE {
		x.cancel()
	}
	ds.mu.Unlock()
	ds.wg.Wait()
}

// report is the source's callback: it keeps the answer and, once the
// daemon serves, applies it.
func (x *discovered) report(found []config.Backend) {
	x.mu.Lock()
	x.latest = found
	d := x.d
	x.mu.Unlock()
	if d != nil {
		x.apply(d)
	}
}

// apply makes the frontend's backends what the source found, merged with
// its static ones, through setBackends (the data plane's set, then its
// health checks). With on_down = "close" the connections still on
// backends that left are closed: a master Sentinel replaced is no longer
// one, and a client writing to it loses its writes. A source a reload
// retired applies nothing.
func (x *discovered) apply(d *Daemon) {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	x.mu.Lock()
	retired := x.retired
	x.mu.Unlock()
	fe := frontendOf(d.config(), x.fe)
	want := x.expand()
	if retired || !d.serving.Load() || d.isHandedOver() || fe == nil || slices.Equal(fe.Backends, want) {
		return
	}
	before := make(map[string]*backend.Backend)
	for _, b := range d.srv.Backends(x.fe) {
		before[b.Name()] = b
	}
	change, err := d.setBackends(context.Background(), x.fe, want)
	if err != nil {
		x.log.Error().Err(err).Msg("discovered backends refused")
		return
	}
	closed := 0
	if fe.OnDown == config.OnDownClose {
		for _, name := range change.Removed {
			if b := before[name]; b != nil {
				n, _ := d.srv.CloseBackendConnections(x.fe, b)
				closed += n
			}
		}
	}
	x.log.Info().Strs("added", change.Added).Strs("updated", change.Updated).Strs("removed", change.Removed).
		Int("backends", len(want)).Int("connections_closed", closed).Msg("backends discovered")
}

// discoveryPlan is what a reload does to the sources: keep those whose
// settings did not change (with the static backends of the new config),
// start new ones, retire the others. Nothing changes for the running
// sources until commit.
type discoveryPlan struct {
	ds      *discoveries
	kept    map[*discovered][]config.Backend // new static backends
	started []*discovered
	retired []*discovered
}

// prepare plans the sources of cfg, a config about to be applied over
// old, and gives cfg's frontends with a source the backends it found.
// Sources whose settings changed start now and are waited for up to
// discoveryStartWait, as at start. The caller holds the daemon's ctl;
// the plan must be committed or aborted.
func (ds *discoveries) prepare(cfg *config.Config) (*discoveryPlan, error) {
	ds.mu.Lock()
	running := make(map[string]*discovered, len(ds.byFE))
	for name, x := range ds.byFE {
		running[name] = x
	}
	ds.mu.Unlock()
	p := &discoveryPlan{ds: ds, kept: make(map[*discovered][]config.Backend)}
	wanted := make(map[string]bool)
	for i := range cfg.Frontends {
		fe := &cfg.Frontends[i]
		spec, ok := specOf(cfg, fe)
		if !ok {
			continue
		}
		wanted[fe.Name] = true
		if x := running[fe.Name]; x != nil && reflect.DeepEqual(x.spec, spec) {
			p.kept[x] = staticOf(fe)
			continue
		}
		x, err := ds.newDiscovered(cfg, fe)
		if err != nil {
			p.abort()
			return nil, err
		}
		p.started = append(p.started, x)
		if old := running[fe.Name]; old != nil {
			p.retired = append(p.retired, old)
		}
	}
	for name, x := range running {
		if !wanted[name] {
			p.retired = append(p.retired, x)
		}
	}
	waitReady(p.started)
	for _, x := range p.started {
		frontendOf(cfg, x.fe).Backends = x.expand()
	}
	for x, static := range p.kept {
		frontendOf(cfg, x.fe).Backends = x.expandWith(static)
	}
	return p, nil
}

// abort stops the sources the plan started; the running ones go on.
func (p *discoveryPlan) abort() {
	for _, x := range p.started {
		x.cancel()
	}
}

// commit makes the plan's sources the running ones and sends their
// answers to d from now on; an answer a new source gave since prepare is
// applied once the reload's lock is released. The caller holds d.ctl.
func (p *discoveryPlan) commit(d *Daemon) {
	ds := p.ds
	for x, static := range p.kept {
		x.mu.Lock()
		x.static = static
		x.mu.Unlock()
	}
	ds.mu.Lock()
	for _, x := range p.retired {
		x.mu.Lock()
		x.retired = true
		x.mu.Unlock()
		x.cancel()
		if ds.byFE[x.fe] == x {
			delete(ds.byFE, x.fe)
		}
	}
	for _, x := range p.started {
		ds.byFE[x.fe] = x
	}
	ds.mu.Unlock()
	for _, x := range p.started {
		x.mu.Lock()
		x.d = d
		x.mu.Unlock()
		// apply takes d.ctl, which the reload holds: it runs after.
		ds.wg.Go(func() { x.apply(d) })
	}
}

// dnsStats returns the lookup counts of every DNS source, by frontend.
func (ds *discoveries) dnsStats() map[string][]discovery.LookupStats {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	out := make(map[string][]discovery.LookupStats)
	for name, x := range ds.byFE {
		if s, ok := x.src.(*discovery.DNS); ok {
			out[name] = s.Stats()
		}
	}
	return out
}
