package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/discovery"
)

// discoveryStartWait bounds how long New waits for every discovery
// source's first answer before building the data plane: long enough for a
// Sentinel on the network to answer, short enough that a dead one does not
// hold the start. A frontend without an answer starts with no backend and
// refuses clients (no_backend) until one comes.
const discoveryStartWait = 2 * time.Second

// discoveries runs the discovery source of every frontend that has one.
// What a source finds becomes the frontend's backends through
// Daemon.SetBackends, the path a config reload takes too, so counters,
// health state, drains and open connections survive a change.
type discoveries struct {
	list   []*discovered
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// discovered is one frontend fed by a discovery source.
type discovered struct {
	fe  string
	src *discovery.Sentinel
	log zerolog.Logger

	mu     sync.Mutex
	latest []netip.AddrPort // the source's last answer
	d      *Daemon          // set by goLive: answers go to SetBackends from then on
}

// startDiscoveries starts the sources of cfg's frontends, waits up to
// discoveryStartWait for their first answers, and returns cfg with those
// answers as the frontends' backends (cfg itself when no frontend has a
// source), ready for New to build the data plane on.
func startDiscoveries(cfg *config.Config, log zerolog.Logger) (*discoveries, *config.Config, error) {
	ds := &discoveries{}
	for i := range cfg.Frontends {
		fe := &cfg.Frontends[i]
		if fe.Discovery == nil {
			continue
		}
		flog := log.With().Str("frontend", fe.Name).Logger()
		src, err := discovery.NewSentinel(fe.Discovery, flog)
		if err != nil {
			return nil, nil, fmt.Errorf("frontend %q: %w", fe.Name, err)
		}
		ds.list = append(ds.list, &discovered{fe: fe.Name, src: src, log: flog})
	}
	if len(ds.list) == 0 {
		return ds, cfg, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	ds.cancel = cancel
	for _, x := range ds.list {
		ds.wg.Go(func() { x.src.Run(ctx, x.report) })
	}
	deadline := time.After(discoveryStartWait)
	for _, x := range ds.list {
		select {
		case <-x.src.Ready():
		case <-deadline:
			x.log.Warn().Msg("no Sentinel answered yet: the frontend refuses clients until one does")
		}
	}
	out := *cfg
	out.Frontends = slices.Clone(cfg.Frontends)
	for _, x := range ds.list {
		x.mu.Lock()
		addrs := x.latest
		x.mu.Unlock()
		frontendOf(&out, x.fe).Backends = discoveredBackends(addrs)
	}
	return ds, &out, nil
}

// discoveredBackends is the config's form of the addresses a source found:
// each named after its address, which is its identity across changes.
func discoveredBackends(addrs []netip.AddrPort) []config.Backend {
	bs := make([]config.Backend, len(addrs))
	for i, a := range addrs {
		bs[i] = config.Backend{Name: a.String(), Address: a, Weight: 1}
	}
	return bs
}

// goLive sends every later answer to d, and the answers that came since
// New built the data plane at once.
func (ds *discoveries) goLive(d *Daemon) {
	for _, x := range ds.list {
		x.mu.Lock()
		x.d = d
		addrs := x.latest
		x.mu.Unlock()
		if !slices.Equal(backendAddrs(frontendOf(d.config(), x.fe)), addrs) {
			x.apply(d, addrs)
		}
	}
}

// stop ends every source and waits for them.
func (ds *discoveries) stop() {
	if ds.cancel != nil {
		ds.cancel()
	}
	ds.wg.Wait()
}

// report is the source's callback: it keeps the answer and, once the
// daemon serves, applies it.
func (x *discovered) report(addrs []netip.AddrPort) {
	x.mu.Lock()
	x.latest = addrs
	d := x.d
	x.mu.Unlock()
	if d != nil {
		x.apply(d, addrs)
	}
}

// apply makes addrs the frontend's backends through SetBackends (the data
// plane's set, then its health checks). With on_down = "close" the
// connections still on backends that left are closed: a master Sentinel
// replaced is no longer one, and a client writing to it loses its writes.
func (x *discovered) apply(d *Daemon, addrs []netip.AddrPort) {
	before := make(map[string]*backend.Backend)
	for _, b := range d.srv.Backends(x.fe) {
		before[b.Name()] = b
	}
	specs := make([]backend.Spec, len(addrs))
	for i, a := range addrs {
		specs[i] = backend.Spec{Name: a.String(), Address: a, Weight: 1}
	}
	change, err := d.SetBackends(context.Background(), x.fe, specs)
	if err != nil {
		x.log.Error().Err(err).Msg("discovered backends refused")
		return
	}
	closed := 0
	if fe := frontendOf(d.config(), x.fe); fe != nil && fe.OnDown == config.OnDownClose {
		for _, name := range change.Removed {
			if b := before[name]; b != nil {
				n, _ := d.srv.CloseBackendConnections(x.fe, b)
				closed += n
			}
		}
	}
	x.log.Info().Strs("added", change.Added).Strs("removed", change.Removed).Int("connections_closed", closed).
		Msg("backends discovered")
}

// backendAddrs is fe's backend addresses in order; nil for a nil fe.
func backendAddrs(fe *config.Frontend) []netip.AddrPort {
	if fe == nil {
		return nil
	}
	out := make([]netip.AddrPort, len(fe.Backends))
	for i, b := range fe.Backends {
		out[i] = b.Address
	}
	return out
}

// keepDiscovered gives cfg's frontends with a discovery source the backends
// that source found (those of old, the config in force): a config file
// lists none for them. It returns the problems of frontends whose discovery
// settings changed, which a reload cannot apply to a running source.
func keepDiscovered(old, cfg *config.Config) []config.Problem {
	var ps []config.Problem
	for i := range cfg.Frontends {
		fe := &cfg.Frontends[i]
		was := frontendOf(old, fe.Name)
		switch {
		case fe.Discovery == nil && (was == nil || was.Discovery == nil):
			continue
		case fe.Discovery == nil || was == nil || was.Discovery == nil || !reflect.DeepEqual(*fe.Discovery, *was.Discovery):
			ps = append(ps, config.Problem{File: cfg.File, Path: fmt.Sprintf("frontend %q: discovery", fe.Name),
				Msg: "changed, which a reload cannot apply to a running discovery; run \"splicer upgrade\" (no connection is lost) or restart"})
			continue
		}
		fe.Backends = slices.Clone(was.Backends)
	}
	return ps
}
