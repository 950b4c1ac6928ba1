package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// connInfo is what the server knows of a connection before any request:
// its transport, the socket peer's credentials, and whether it is local.
type connInfo struct {
	transport string
	// peer is the socket peer's pid, uid and gid (SO_PEERCRED); nil on
	// TCP.
	peer *unix.Ucred
	// local is true for the socket and for TCP from a loopback address.
	local bool
}

type connInfoKey struct{}

// connContext is the http.Server's ConnContext: it records each
// connection's transport and, on the socket, the peer's credentials, read
// once at accept.
func connContext(ctx context.Context, c net.Conn) context.Context {
	ci := connInfo{transport: TransportTCP}
	if tc, ok := c.(*tls.Conn); ok {
		ci.transport = TransportTLS
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok {
		c = lc.Conn
	}
	switch conn := c.(type) {
	case *net.UnixConn:
		ci.transport, ci.local = TransportUnix, true
		ci.peer = peerCred(conn)
	case *net.TCPConn:
		if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil {
			ci.local = ap.Addr().Unmap().IsLoopback()
		}
	}
	return context.WithValue(ctx, connInfoKey{}, ci)
}

// peerCred reads SO_PEERCRED; nil when it cannot, which grants nothing.
func peerCred(c *net.UnixConn) *unix.Ucred {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil {
		return nil
	}
	return cred
}

// requestConn returns the connInfo of r's connection. A request that did
// not come through Server.Serve (a handler embedded elsewhere) is TCP, and
// local only from a loopback address.
func requestConn(r *http.Request) connInfo {
	if ci, ok := r.Context().Value(connInfoKey{}).(connInfo); ok {
		return ci
	}
	ci := connInfo{transport: TransportTCP}
	if r.TLS != nil {
		ci.transport = TransportTLS
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ci.local = ap.Addr().Unmap().IsLoopback()
	}
	return ci
}

// MaxSocketPath is the longest admin socket path: a unix socket's path is
// at most 107 bytes, and ListenUnix binds it first under a private
// directory whose name adds up to 14.
const MaxSocketPath = 107 - 14

// ListenUnix creates the admin socket at path with mode and, when group is
// not "", that group (a name or a number). The socket is created in a
// private directory beside path, given its mode and group there and then
// renamed into place, so it is never reachable with looser permissions. A
// stale socket left by a crash is replaced; one that a live process still
// accepts on is an error, as is any other kind of file at path. Closing the
// listener removes path.
func ListenUnix(path string, mode fs.FileMode, group string) (net.Listener, error) {
	gid := -1
	if group != "" {
		id, err := lookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("admin.socket_group: %w", err)
		}
		gid = id
	}
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("admin.socket: %q is %d bytes long; the path of the admin socket must be at most %d",
			path, len(path), MaxSocketPath)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".s")
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ln, path: path, fi: fi}, nil
}

// unixListener removes its socket file on Close, unless the file was
// replaced by someone else meanwhile.
type unixListener struct {
	*net.UnixListener
	path string
	fi   fs.FileInfo
	once sync.Once
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, statErr := os.Lstat(l.path); statErr == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return err
}

// Addr reports the socket's path, not the private name it was bound to.
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func lookupGroup(group string) (int, error) {
	if n, err := strconv.ParseUint(group, 10, 32); err == nil {
		return int(n), nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("group %s: gid %q is not a number", group, g.Gid)
	}
	return n, nil
}

// removeStaleSocket removes a socket at path that nobody accepts on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket %s: exists and is not a socket", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s: another process is serving it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("admin socket: removing a stale socket: %w", err)
	}
	return nil
}

// connLimiter caps the admin connections open at once across listeners.
// At the cap, Accept waits (clients queue in the kernel's backlog), so the
// admin port never holds more file descriptors than the cap, apart from
// the data plane's budget.
type connLimiter struct {
	slots  chan struct{}
	closed chan struct{}
	once   sync.Once
}

func newConnLimiter(n int) *connLimiter {
	return &connLimiter{slots: make(chan struct{}, n), closed: make(chan struct{})}
}

// open reports the connections open now.
func (l *connLimiter) open() int { return len(l.slots) }

// close wakes every Accept waiting for a slot.
func (l *connLimiter) close() { l.once.Do(func() { close(l.closed) }) }

// wrap returns ln with Accept bounded by l.
func (l *connLimiter) wrap(ln net.Listener) net.Listener { return &limitedListener{Listener: ln, l: l} }

type limitedListener struct {
	net.Listener
	l *connLimiter
}

func (ll *limitedListener) Accept() (net.Conn, error) {
	select {
	case ll.l.slots <- struct{}{}:
	case <-ll.l.closed:
		return nil, net.ErrClosed
	}
	c, err := ll.Listener.Accept()
	if err != nil {
		<-ll.l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-ll.l.slots }}, nil
}

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
