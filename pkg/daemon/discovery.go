package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/health"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/discovery"
)

// discoveryStartWait bounds how long Run waits, before binding the
// listeners, for every discovery source's first answer: long enough for a
// Sentinel on the network to answer, short enough that a dead one does not
// hold the start. A frontend without an answer refuses clients until one
// comes.
const discoveryStartWait = 2 * time.Second

// backendSetter is what discovery needs of the data plane (*l4.Server):
// replace a frontend's backends, merged by identity, and close the
// connections of those that left. A reload that changes backends goes
// through the same SetBackends.
type backendSetter interface {
	SetBackends(frontend string, specs []backend.Spec) (added, removed []*backend.Backend, err error)
	Backends(frontend string) []*backend.Backend
	CloseBackendConnections(frontend string, b *backend.Backend) error
}

// discoveries runs the discovery source of every frontend that has one.
type discoveries struct {
	list   []*discovered
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// discovered is one frontend fed by a discovery source.
type discovered struct {
	fe    *config.Frontend
	src   *discovery.Sentinel
	srv   backendSetter
	sched *health.Scheduler // nil when the frontend has no health checks
	log   zerolog.Logger
}

// newDiscoveries builds the sources of cfg's frontends; nothing runs until
// start. schedulers holds the health Scheduler of each checked frontend.
func newDiscoveries(cfg *config.Config, srv backendSetter, schedulers map[string]*health.Scheduler, log zerolog.Logger) (*discoveries, error) {
	ds := &discoveries{}
	for i := range cfg.Frontends {
		fe := &cfg.Frontends[i]
		if fe.Discovery == nil {
			continue
		}
		flog := log.With().Str("frontend", fe.Name).Logger()
		src, err := discovery.NewSentinel(fe.Discovery, flog)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: %w", fe.Name, err)
		}
		ds.list = append(ds.list, &discovered{fe: fe, src: src, srv: srv, sched: schedulers[fe.Name], log: flog})
	}
	return ds, nil
}

// start runs every source on its own goroutine, then waits up to
// discoveryStartWait for their first answers.
func (ds *discoveries) start() {
	ctx, cancel := context.WithCancel(context.Background())
	ds.cancel = cancel
	for _, d := range ds.list {
		ds.wg.Go(func() { d.src.Run(ctx, d.apply) })
	}
	deadline := time.After(discoveryStartWait)
	for _, d := range ds.list {
		select {
		case <-d.src.Ready():
		case <-deadline:
			d.log.Warn().Msg("no Sentinel answered yet: the frontend refuses clients until one does")
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

// apply makes addrs the frontend's backends: the data plane's set first
// (no new connection goes to a backend that left once it returns), then
// the health checks, then, with on_down = "close", the connections still
// on the backends that left: a master Sentinel replaced is no longer one.
func (d *discovered) apply(addrs []netip.AddrPort) {
	specs := make([]backend.Spec, len(addrs))
	for i, a := range addrs {
		specs[i] = backend.Spec{Address: a, Weight: 1}
	}
	added, removed, err := d.srv.SetBackends(d.fe.Name, specs)
	if err != nil {
		d.log.Error().Err(err).Msg("discovered backends refused")
		return
	}
	if d.sched != nil {
		if err := d.sched.SetBackends(d.srv.Backends(d.fe.Name)); err != nil {
			d.log.Error().Err(err).Msg("health checks of the discovered backends")
		}
	}
	if d.fe.OnDown == config.OnDownClose {
		for _, b := range removed {
			_ = d.srv.CloseBackendConnections(d.fe.Name, b)
		}
	}
	d.log.Info().Strs("added", names(added)).Strs("removed", names(removed)).Msg("backends discovered")
}

func names(bs []*backend.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name()
	}
	return out
}
