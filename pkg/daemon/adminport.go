package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/logging"
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

// adminPort is the admin server and the listeners it serves: the TCP one
// (TLS when configured) and the unix socket. One server serves both, so
// the connection and request caps hold across them.
type adminPort struct {
	srv *admin.Server
	log zerolog.Logger
	tls *tls.Config // for the TCP listener; nil without TLS
	wg  sync.WaitGroup
}

// listenAdmin binds the admin TCP address, or takes the listener an
// upgrade handed over when it is bound there.
func listenAdmin(addr string, h *Handover) (net.Listener, error) {
	if h != nil && h.admin >= 0 {
		fd := h.admin
		h.admin = -1
		f := os.NewFile(uintptr(fd), "admin")
		ln, err := net.FileListener(f) // a dup of f: f is ours to close
		f.Close()
		if err == nil && sameAddr(ln.Addr(), addr) {
			return ln, nil
		}
		if ln != nil {
			ln.Close()
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	return ln, nil
}

// sameAddr reports whether a listener at got serves the configured addr
// (whose port may be 0).
func sameAddr(got net.Addr, addr string) bool {
	tcp, ok := got.(*net.TCPAddr)
	want, err := net.ResolveTCPAddr("tcp", addr)
	if !ok || err != nil || !tcp.IP.Equal(want.IP) {
		return false
	}
	return want.Port == 0 || want.Port == tcp.Port
}

// startAdmin binds the admin TCP listener (or takes the one an upgrade
// handed over) and the admin socket, as configured, and serves them with
// one admin server on goroutines of their own.
func (d *Daemon) startAdmin(cfg *config.Config, h *Handover) error {
	if !adminEnabled(cfg) {
		return nil
	}
	ac := cfg.Admin
	var tcp, sock net.Listener
	if ac.Listen != "" {
		ln, err := listenAdmin(ac.Listen, h)
		if err != nil {
			return err
		}
		tcp = ln
	}
	// The new process of an upgrade binds the socket once the old one has
	// let go of it (bindAdminSocket): the old one serves it until then.
	// What would fail the bind for certain fails the start now, while the
	// old one can serve on.
	if ac.Socket != "" && h != nil {
		if err := socketPathUsable(ac.Socket); err != nil {
			if tcp != nil {
				tcp.Close()
			}
			return err
		}
	}
	if ac.Socket != "" && h == nil {
		ln, err := admin.ListenUnix(ac.Socket, ac.SocketMode, ac.SocketGroup)
		if err != nil {
			if tcp != nil {
				tcp.Close()
			}
			return err
		}
		sock = ln
	}
	log := logging.Component(d.log, "admin")
	src := &source{d: d}
	p := &adminPort{
		srv: admin.New(src, d.reg, log, admin.Options{
			Security: d.security, Lifecycle: src, History: historySource{d},
			MaxConnections: ac.MaxConnections, MaxRequests: ac.MaxRequests,
			Metrics: d.metricsHandler(log),
		}),
		log: log,
		tls: d.security.TLSConfig(),
	}
	if tcp != nil {
		p.serve(tcp, p.tls)
	}
	if sock != nil {
		p.serve(sock, nil)
	}
	d.adminMu.Lock()
	d.admin, d.adminLn, d.adminSock = p, tcp, sock
	d.adminMu.Unlock()
	return nil
}

// socketPathUsable reports why the admin socket cannot be bound at path
// once the process serving it there has let go: its directory is missing,
// or something other than a socket is in the way.
func socketPathUsable(path string) error {
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket %s: exists and is not a socket", path)
	}
	return nil
}

// bindAdminSocket binds and serves the admin socket of cfg, if it has one,
// in the new process of an upgrade once the old process has let go: the
// socket is not handed over, and the old process served it until then.
func (d *Daemon) bindAdminSocket(cfg *config.Config) error {
	ac := cfg.Admin
	if ac.Socket == "" {
		return nil
	}
	ln, err := admin.ListenUnix(ac.Socket, ac.SocketMode, ac.SocketGroup)
	if err != nil {
		return err
	}
	d.adminMu.Lock()
	defer d.adminMu.Unlock()
	if d.admin == nil { // stopping already
		ln.Close()
		return nil
	}
	d.admin.serve(ln, nil)
	d.adminSock = ln
	return nil
}

// serve serves ln, with TLS when tlsConfig is not nil, until the server
// shuts down or ln is closed.
func (p *adminPort) serve(ln net.Listener, tlsConfig *tls.Config) {
	p.log.Info().Str("listen", ln.Addr().String()).Str("transport", ln.Addr().Network()).
		Bool("tls", tlsConfig != nil).Msg("admin port listening")
	p.wg.Go(func() {
		serve := p.srv.Serve
		if tlsConfig != nil {
			serve = func(ln net.Listener) error { return p.srv.ServeTLS(ln, tlsConfig) }
		}
		err := serve(ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			p.log.Error().Err(err).Str("listen", ln.Addr().String()).Msg("admin listener stopped")
		}
	})
}

// stop shuts the server down, letting requests in flight finish.
func (p *adminPort) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), adminShutdown)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	p.wg.Wait()
}

// moveTCP makes ln (nil: none) the admin port's TCP listener: the server
// serves it from now on, and the old one is closed; requests under way on
// connections it accepted are answered, the request that caused the move
// among them.
func (d *Daemon) moveTCP(ln net.Listener) {
	d.adminMu.Lock()
	p, old := d.admin, d.adminLn
	d.adminLn = ln
	d.adminMu.Unlock()
	if ln != nil && p != nil {
		p.serve(ln, p.tls)
	}
	if old != nil {
		old.Close()
		p.log.Info().Str("listen", old.Addr().String()).Msg("admin TCP listener closed: the admin port moved")
	}
}

// retireAdmin stops the admin server in the background: the request that
// caused it (an upgrade) is one of those in flight, and must be answered.
func (d *Daemon) retireAdmin() {
	d.adminMu.Lock()
	p, sock := d.admin, d.adminSock
	d.admin, d.adminLn, d.adminSock = nil, nil, nil
	d.adminMu.Unlock()
	if p == nil {
		return
	}
	if sock != nil {
		// At once, not in the server's shutdown in the background: the
		// new process of an upgrade binds the path once this one is done.
		// Requests on connections it accepted are still answered.
		sock.Close()
	}
	d.background.Go(p.stop)
}

// stopAdmin stops the admin server and waits for every retired one.
func (d *Daemon) stopAdmin() {
	d.retireAdmin()
	d.background.Wait()
}

// adminListenerFD returns a duplicate of the admin TCP listener's fd for an
// upgrade (-1 when there is none); the caller closes it. It is taken
// through SyscallConn, not File, which would switch the socket to
// blocking mode under this process's own server.
func (d *Daemon) adminListenerFD() (int, error) {
	d.adminMu.Lock()
	ln := d.adminLn
	d.adminMu.Unlock()
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return -1, nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("fcntl", dupErr)
	}
	return fd, nil
}
