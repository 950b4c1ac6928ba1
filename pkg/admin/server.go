package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// DefaultAddr is where the admin port listens unless configured otherwise:
// loopback only, so that without users only local processes can read it.
const DefaultAddr = "127.0.0.1:9090"

// Defaults of Options' limits, the same as [admin]'s.
const (
	DefaultMaxConnections = 64
	DefaultMaxRequests    = 16
)

// Options tunes a Server. The zero value is ready to use.
type Options struct {
	// Security authenticates, authorizes and audits every request; nil
	// means ReadOnly: anonymous read-only access from loopback.
	Security *Security
	// MaxConnections caps the connections open at once across every
	// listener served (DefaultMaxConnections when 0); MaxRequests the
	// requests being served at once (DefaultMaxRequests when 0).
	MaxConnections int
	MaxRequests    int
	// Lifecycle, when set, serves reload, upgrade and the runtime state.
	Lifecycle Lifecycle
	// History, when set, serves GET /api/v1/history.
	History HistorySource
	// Timeouts of the HTTP server; zero picks the default noted on each.
	// They bound what a slow or idle client can hold, since the admin
	// port must stay usable while the data plane is under stress.
	ReadHeaderTimeout time.Duration // 5s
	ReadTimeout       time.Duration // 10s
	WriteTimeout      time.Duration // 30s: a scrape of many backends must fit
	IdleTimeout       time.Duration // 2m
	// Metrics, when set, serves GET /metrics instead of the registry New
	// is given (the daemon writes its series straight from a snapshot:
	// see pkg/metrics). The route's permission applies to it as to any.
	Metrics http.Handler
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Server is the admin HTTP server. It has its own ServeMux and never touches
// http.DefaultServeMux or the default Prometheus registry. One Server may
// serve several listeners (TCP, TLS, the unix socket) at once.
type Server struct {
	src       Source
	log       zerolog.Logger
	sec       *Security
	metrics   http.Handler
	handler   http.Handler
	http      *http.Server
	conns     *connLimiter
	inflight  chan struct{}
	lifecycle Lifecycle
	history   HistorySource
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
		sec:       opts.Security,
		metrics:   opts.Metrics,
		conns:     newConnLimiter(orDefault(opts.MaxConnections, DefaultMaxConnections)),
		inflight:  make(chan struct{}, orDefault(opts.MaxRequests, DefaultMaxRequests)),
		lifecycle: opts.Lifecycle,
		history:   opts.History,
	}
	if s.sec == nil {
		s.sec = ReadOnly(log)
	}
	if s.metrics == nil {
		s.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promLog{log}})
	}
	s.handler = s.newMux()
	s.http = &http.Server{
		Handler:           s.handler,
		ConnContext:       connContext,
		ReadHeaderTimeout: orDefault(opts.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout:       orDefault(opts.ReadTimeout, 10*time.Second),
		WriteTimeout:      orDefault(opts.WriteTimeout, 30*time.Second),
		IdleTimeout:       orDefault(opts.IdleTimeout, 2*time.Minute),
		MaxHeaderBytes:    16 << 10,
		// What net/http logs itself (failed TLS handshakes, clients that
		// vanish) is noise but for debugging.
		ErrorLog: stdlog.New(debugWriter{log}, "", 0),
	}
	return s
}

// debugWriter logs each line written at debug level.
type debugWriter struct{ log zerolog.Logger }

func (d debugWriter) Write(p []byte) (int, error) {
	d.log.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// promLog routes promhttp's errors (a collector failing a scrape) into the
// server's log.
type promLog struct{ log zerolog.Logger }

// Println implements promhttp.Logger.
func (p promLog) Println(v ...any) { p.log.Error().Msg(strings.TrimSpace(fmt.Sprintln(v...))) }

// Handler returns the server's routes, for tests and for embedding behind
// another listener; requests still pass every check, and count as TCP.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until Shutdown, then returns
// http.ErrServerClosed. It takes ownership of ln and closes it. Accept
// waits while the server holds Options.MaxConnections connections. The
// transport of each connection (TCP, or the unix socket from ListenUnix)
// decides how its requests may authenticate; for TLS use ServeTLS.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.Serve(s.conns.wrap(ln))
}

// ServeTLS is Serve with TLS on ln's connections, configured by cfg (see
// Security.TLSConfig). The connection cap applies below TLS, so a client
// stalling its handshake holds a counted slot.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	return s.http.Serve(tls.NewListener(s.conns.wrap(ln), cfg))
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

// OpenConnections reports the admin connections open now.
func (s *Server) OpenConnections() int { return s.conns.open() }

// Shutdown stops accepting, waits for requests in flight to finish, and
// returns ctx's error if they outlast it; the connections left are then
// closed so that nothing outlives the call.
func (s *Server) Shutdown(ctx context.Context) error {
	s.conns.close()
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("admin: shutdown: %w", err), s.http.Close())
	}
	return err
}
