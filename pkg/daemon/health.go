package daemon

import (
	"context"
	"fmt"
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
// passive_fall is set.
type checks struct {
	schedulers []*health.Scheduler
	byFrontend map[string]*health.Scheduler
	// checkers holds each frontend's active checker, whose secrets a
	// reload reads again (secrets.go).
	checkers map[string]health.Checker
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

// newChecks builds the schedulers for cfg's frontends and connects them to
// srv: passive reports in, on_down = "close" out. Nothing runs until start.
func newChecks(cfg *config.Config, srv *l4.Server, log zerolog.Logger) (*checks, error) {
	hc := &checks{byFrontend: make(map[string]*health.Scheduler), checkers: make(map[string]health.Checker)}
	for i := range cfg.Frontends {
		fe := &cfg.Frontends[i]
		if fe.Health.Check == config.CheckNone && fe.Health.PassiveFall == 0 {
			continue
		}
		onChange := func(b *backend.Backend, up bool, _ health.Result) {}
		if fe.OnDown == config.OnDownClose {
			name := fe.Name
			onChange = func(b *backend.Backend, up bool, _ health.Result) {
				if !up {
					// The frontend exists: srv was built from this config.
					_ = srv.CloseBackendConnections(name, b)
				}
			}
		}
		s, checker, err := newScheduler(fe, srv.Backends(fe.Name), onChange, log.With().Str("frontend", fe.Name).Logger())
		if err != nil {
			return nil, fmt.Errorf("frontend %q: health: %w", fe.Name, err)
		}
		if checker != nil {
			hc.checkers[fe.Name] = checker
		}
		if fe.Health.PassiveFall > 0 {
			if err := srv.Observe(fe.Name, passive{s}); err != nil {
				return nil, fmt.Errorf("frontend %q: %w", fe.Name, err)
			}
		}
		hc.schedulers = append(hc.schedulers, s)
		hc.byFrontend[fe.Name] = s
	}
	return hc, nil
}

// newScheduler builds fe's Scheduler: passive-only for check "none",
// else probing with fe's checker, which it returns too (nil for "none").
func newScheduler(fe *config.Frontend, bs []*backend.Backend, onChange func(*backend.Backend, bool, health.Result), log zerolog.Logger) (*health.Scheduler, health.Checker, error) {
	if fe.Health.Check == config.CheckNone {
		s, err := health.NewPassive(fe.Health, bs, onChange, log)
		return s, nil, err
	}
	checker, err := newChecker(fe)
	if err != nil {
		return nil, nil, err
	}
	s, err := health.New(fe.Health, checker, bs, onChange, log)
	return s, checker, err
}

func newChecker(fe *config.Frontend) (health.Checker, error) {
	if fe.Protocol == config.ProtocolUDP {
		return health.NewUDPChecker(fe.Health)
	}
	return health.NewChecker(fe.Health)
}

// start runs every scheduler on its own goroutine until stop.
func (hc *checks) start() {
	ctx, cancel := context.WithCancel(context.Background())
	hc.cancel = cancel
	for _, s := range hc.schedulers {
		hc.wg.Add(1)
		go hc.run(ctx, s)
	}
}

func (hc *checks) run(ctx context.Context, s *health.Scheduler) {
	defer hc.wg.Done()
	// Run returns only ErrStarted, which cannot happen: each scheduler is
	// run once, here.
	_ = s.Run(ctx)
}

// stop ends every probe and waits for the schedulers' goroutines.
func (hc *checks) stop() {
	if hc.cancel != nil {
		hc.cancel()
	}
	hc.wg.Wait()
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
