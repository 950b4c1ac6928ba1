package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/logging"
)

// adminShutdown bounds how long in-flight admin requests may take to finish
// when the daemon stops or the admin port moves.
const adminShutdown = 5 * time.Second

// adminPort is one admin HTTP server on its listener.
type adminPort struct {
	srv  *admin.Server
	ln   net.Listener
	done chan struct{}
}

// listenAdmin binds the admin address, or takes the listener an upgrade
// handed over when it is bound there.
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

// startAdmin binds the admin port (when [admin] listen is set) and serves
// it on its own goroutine.
func (d *Daemon) startAdmin(cfg *config.Config, h *Handover) error {
	if cfg.Admin.Listen == "" {
		return nil
	}
	ln, err := listenAdmin(cfg.Admin.Listen, h)
	if err != nil {
		return err
	}
	d.serveAdmin(ln)
	return nil
}

// serveAdmin starts an admin server on ln and makes it the current one.
func (d *Daemon) serveAdmin(ln net.Listener) {
	log := logging.Component(d.log, "admin")
	src := &source{d: d}
	p := &adminPort{
		srv:  admin.New(src, d.reg, log, admin.Options{Lifecycle: src}),
		ln:   ln,
		done: make(chan struct{}),
	}
	go p.serve(log)
	log.Info().Str("listen", ln.Addr().String()).Msg("admin port listening")
	d.adminMu.Lock()
	d.admin, d.adminLn = p, ln
	d.adminMu.Unlock()
}

// serve runs the admin server until it is shut down.
func (p *adminPort) serve(log zerolog.Logger) {
	defer close(p.done)
	if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error().Err(err).Msg("admin port stopped")
	}
}

// stop shuts the server down, letting requests in flight finish.
func (p *adminPort) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), adminShutdown)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	<-p.done
}

// retireAdmin stops the current admin server in the background: the
// request that caused it (a reload moving the port, an upgrade) is one of
// those in flight, and must be answered.
func (d *Daemon) retireAdmin() {
	d.adminMu.Lock()
	p := d.admin
	d.admin, d.adminLn = nil, nil
	d.adminMu.Unlock()
	if p == nil {
		return
	}
	d.background.Add(1)
	go func() {
		defer d.background.Done()
		p.stop()
	}()
}

// stopAdmin stops the admin server and waits for every retired one.
func (d *Daemon) stopAdmin() {
	d.retireAdmin()
	d.background.Wait()
}

// adminListenerFD returns a duplicate of the admin listener's fd for an
// upgrade (-1 when the port is off); the caller closes it. It is taken
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
