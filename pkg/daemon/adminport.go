package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/logging"
	"github.com/splicerlb/splicer/pkg/metrics"
)

// adminShutdown bounds how long in-flight admin requests may take to finish
// when the daemon stops.
const adminShutdown = 5 * time.Second

// adminEnabled reports whether cfg has an admin listener of any kind.
func adminEnabled(cfg *config.Config) bool { return cfg.Admin.Listen != "" || cfg.Admin.Socket != "" }

// newSecurity reads what the admin port authenticates against and opens
// the audit log; nil when the admin port is disabled.
func newSecurity(cfg *config.Config, log zerolog.Logger) (*admin.Security, error) {
	if !adminEnabled(cfg) {
		return nil, nil
	}
	access, err := admin.LoadAccess(cfg)
	if err != nil {
		return nil, err
	}
	sec, err := admin.NewSecurity(cfg, access, log)
	if err != nil {
		return nil, err
	}
	mode := "read-only on loopback and the socket: no users_file"
	if u := access.Users(); u != nil {
		mode = fmt.Sprintf("%d users", len(u.List()))
	}
	log.Info().Str("access", mode).Bool("tls", access.TLS()).Str("audit_log", cfg.Admin.AuditLog).Msg("admin access loaded")
	return sec, nil
}

func closeSecurity(sec *admin.Security) {
	if sec != nil {
		_ = sec.Close()
	}
}

// startAdmin binds the admin TCP listener (TLS when configured) and the
// admin socket, as configured, and serves them with one admin server on
// goroutines of their own. The returned stop function shuts the server down
// and waits for them.
func (d *Daemon) startAdmin() (stop func(), err error) {
	if !adminEnabled(d.cfg) {
		return func() {}, nil
	}
	ac := d.cfg.Admin
	log := logging.Component(d.log, "admin")
	var lns []net.Listener
	if ac.Listen != "" {
		ln, err := net.Listen("tcp", ac.Listen)
		if err != nil {
			return nil, fmt.Errorf("admin port: %w", err)
		}
		d.adminLn = ln
		lns = append(lns, ln)
	}
	if ac.Socket != "" {
		ln, err := admin.ListenUnix(ac.Socket, ac.SocketMode, ac.SocketGroup)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		d.adminSock = ln
		lns = append(lns, ln)
	}
	src := &source{d: d, version: d.opts.Version, started: time.Now()}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(src.Stats))
	srv := admin.New(src, reg, log, admin.Options{
		Security: d.security, MaxConnections: ac.MaxConnections, MaxRequests: ac.MaxRequests,
	})
	var wg sync.WaitGroup
	for _, ln := range lns {
		tlsConfig := d.security.TLSConfig()
		if ln == d.adminSock {
			tlsConfig = nil
		}
		wg.Go(func() { serveAdmin(srv, ln, tlsConfig, log) })
		log.Info().Str("listen", ln.Addr().String()).Str("transport", ln.Addr().Network()).
			Bool("tls", tlsConfig != nil).Msg("admin port listening")
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminShutdown)
		defer cancel()
		_ = srv.Shutdown(ctx)
		wg.Wait()
	}, nil
}

// serveAdmin serves one admin listener, with TLS when tlsConfig is not
// nil, until the server shuts down.
func serveAdmin(srv *admin.Server, ln net.Listener, tlsConfig *tls.Config, log zerolog.Logger) {
	serve := srv.Serve
	if tlsConfig != nil {
		serve = func(ln net.Listener) error { return srv.ServeTLS(ln, tlsConfig) }
	}
	if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error().Err(err).Str("listen", ln.Addr().String()).Msg("admin listener stopped")
	}
}
