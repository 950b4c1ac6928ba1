package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// DefaultAddr is where the admin port listens unless configured otherwise:
// loopback only, because until authentication is configured the network is
// the only access control.
const DefaultAddr = "127.0.0.1:9090"

// Options tunes a Server. The zero value is ready to use.
type Options struct {
	// Authorizer checks every request against its route's Need; nil
	// means AllowAll.
	Authorizer Authorizer
	// Lifecycle, when set, serves reload, upgrade and the runtime state.
	Lifecycle Lifecycle
	// Timeouts of the HTTP server; zero picks the default noted on each.
	// They bound what a slow or idle client can hold, since the admin
	// port must stay usable while the data plane is under stress.
	ReadHeaderTimeout time.Duration // 5s
	ReadTimeout       time.Duration // 10s
	WriteTimeout      time.Duration // 30s: a scrape of many backends must fit
	IdleTimeout       time.Duration // 2m
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Server is the admin HTTP server. It has its own ServeMux and never touches
// http.DefaultServeMux or the default Prometheus registry.
type Server struct {
	src       Source
	log       zerolog.Logger
	authorize Authorizer
	lifecycle Lifecycle
	metrics   http.Handler
	handler   http.Handler
	http      *http.Server
}

// New returns a Server that reads and controls src and serves reg at
// /metrics as it is: the caller registers metrics.NewCollector(src.Stats)
// and anything else it wants scraped. A nil reg serves an empty registry.
// Nothing listens until Serve or ListenAndServe.
func New(src Source, reg *prometheus.Registry, log zerolog.Logger, opts Options) *Server {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		src:       src,
		log:       log,
		authorize: opts.Authorizer,
		lifecycle: opts.Lifecycle,
		metrics:   promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
	if s.authorize == nil {
		s.authorize = AllowAll
	}
	s.handler = s.newMux()
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: orDefault(opts.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout:       orDefault(opts.ReadTimeout, 10*time.Second),
		WriteTimeout:      orDefault(opts.WriteTimeout, 30*time.Second),
		IdleTimeout:       orDefault(opts.IdleTimeout, 2*time.Minute),
		MaxHeaderBytes:    16 << 10,
	}
	return s
}

// Handler returns the server's routes, for tests and for embedding behind
// another listener; requests still pass the Authorizer.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until Shutdown, then returns
// http.ErrServerClosed. It takes ownership of ln and closes it.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.Serve(ln)
}

// ListenAndServe listens on addr (DefaultAddr when empty) and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin: listen: %w", err)
	}
	return s.Serve(ln)
}

// Shutdown stops accepting, waits for requests in flight to finish, and
// returns ctx's error if they outlast it; the connections left are then
// closed so that nothing outlives the call.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("admin: shutdown: %w", err), s.http.Close())
	}
	return err
}
