package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/logging"
	"github.com/splicerlb/splicer/pkg/metrics"
)

// adminShutdown bounds how long in-flight admin requests may take to finish
// when the daemon stops.
const adminShutdown = 5 * time.Second

// startAdmin binds the admin port (when [admin] listen is set) and serves
// it on its own goroutine. The returned stop function shuts it down and
// waits for it.
func (d *Daemon) startAdmin() (stop func(), err error) {
	if d.cfg.Admin.Listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", d.cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin port: %w", err)
	}
	d.adminLn = ln
	log := logging.Component(d.log, "admin")
	src := &source{d: d, version: d.opts.Version, started: time.Now()}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(src.Stats))
	srv := admin.New(src, reg, log, admin.Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("admin port stopped")
		}
	}()
	log.Info().Str("listen", ln.Addr().String()).Msg("admin port listening")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminShutdown)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
