package l4

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/pkg/config"
)

// Socket is a listening socket passed from one splicer process to the next
// at a binary upgrade: the new process serves the very sockets the old one
// accepted on, so no client finds the port closed and none queued in a
// socket's backlog is lost.
type Socket struct {
	// Protocol is config.ProtocolTCP or config.ProtocolUDP.
	Protocol string
	// Listen is the address as configured (a port 0 stays 0): the key the
	// new process matches its own config's addresses with.
	Listen netip.AddrPort
	// Frontend and Index name a port 0 address, which several frontends
	// may list: it is the Index-th address of frontend Frontend. Both are
	// zero for any other port.
	Frontend string
	Index    int
	FD       int
}

// listenKey names a listening address as the config gives it. Port 0
// addresses may repeat, so theirs names the frontend and position too.
type listenKey struct {
	protocol string
	addr     netip.AddrPort
	frontend string
	index    int
}

// keyOf is the key of frontend fc's i-th listen address.
func keyOf(fc *config.Frontend, i int) listenKey {
	k := listenKey{protocol: fc.Protocol, addr: fc.Listen[i]}
	if k.addr.Port() == 0 {
		k.frontend, k.index = fc.Name, i
	}
	return k
}

func (k listenKey) String() string { return k.protocol + " " + k.addr.String() }

// boundKey is a socket's protocol and the address it is bound to: what a
// loop knows its listeners by.
type boundKey struct {
	protocol string
	addr     netip.AddrPort
}

// listenGroup is the sockets serving one configured address: one per loop
// (or more, when inherited from a process with more loops), all bound to
// the same address through SO_REUSEPORT.
type listenGroup struct {
	key   listenKey
	bound netip.AddrPort
	// owner is the frontend the sockets serve; "" while a removed UDP
	// frontend's sockets drain (reload.go).
	owner string
	// fds are sockets opened or inherited and not yet adopted by a loop.
	fds []int
}

// closeFrom closes the sockets from index i on, which no loop adopted.
func (g *listenGroup) closeFrom(i int) {
	for _, fd := range g.fds[i:] {
		unix.Close(fd)
	}
	g.fds = g.fds[:i]
}

// Inherit gives the server sockets handed over by a previous process, to
// serve instead of binding new ones. Call it before Start. Start adopts the
// sockets whose protocol and configured address one of its frontends
// listens on, spreading them over the loops and binding more when there are
// fewer than loops; it closes the others. Inherit takes ownership of every
// fd, even on error.
func (s *Server) Inherit(socks []Socket) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closing {
		for _, so := range socks {
			unix.Close(so.FD)
		}
		return errors.New("l4: Inherit after Start")
	}
	if s.inherited == nil {
		s.inherited = make(map[listenKey][]int)
	}
	for _, so := range socks {
		key := listenKey{so.Protocol, so.Listen, so.Frontend, so.Index}
		s.inherited[key] = append(s.inherited[key], so.FD)
	}
	return nil
}

// closeInheritedLocked closes the inherited sockets no frontend adopted.
func (s *Server) closeInheritedLocked() {
	for key, fds := range s.inherited {
		for _, fd := range fds {
			unix.Close(fd)
		}
		s.log.Info().Str("listen", key.String()).Int("sockets", len(fds)).
			Msg("inherited sockets closed: no frontend listens there any more")
	}
	s.inherited = nil
}

// openGroup returns the sockets for key, one per loop at least: the
// inherited ones first, checked, then new ones bound to the same address.
// On error every socket, inherited ones included, is closed. fe gives the
// socket options.
func (s *Server) openGroup(fe *frontend, key listenKey, inherited []int) (*listenGroup, error) {
	g := &listenGroup{key: key, bound: key.addr}
	fail := func(err error) (*listenGroup, error) {
		for _, fd := range inherited {
			unix.Close(fd)
		}
		g.closeFrom(0)
		return nil, err
	}
	for i, fd := range inherited {
		bound, err := checkInherited(fd, key)
		if err != nil {
			return fail(err)
		}
		if i > 0 && bound != g.bound {
			return fail(fmt.Errorf("inherited sockets bound to %v and %v", g.bound, bound))
		}
		g.bound = bound
		inherited[i] = -1
		g.fds = append(g.fds, fd)
		if key.protocol == config.ProtocolUDP {
			if err := setupUDP(fd, fe, bound, s.warnReceiveBuffer(fe)); err != nil {
				return fail(err)
			}
		}
	}
	for len(g.fds) < len(s.loops) {
		fd, bound, err := s.openSocket(fe, key.protocol, g.bound, len(g.fds) == 0)
		if err != nil {
			return fail(err)
		}
		g.bound = bound // a port 0 is resolved by the first bind
		g.fds = append(g.fds, fd)
	}
	return g, nil
}

// openSocket binds one listening socket of fe's at addr and returns it with
// the address it is bound to. first says whether to report a receive
// buffer smaller than asked (once per address, not once per loop).
func (s *Server) openSocket(fe *frontend, protocol string, addr netip.AddrPort, first bool) (int, netip.AddrPort, error) {
	if protocol == config.ProtocolUDP {
		var warn func(int, int)
		if first {
			warn = s.warnReceiveBuffer(fe)
		}
		return openUDP(fe, addr, warn)
	}
	fd, err := sock.Listen(addr, listenBacklog, true)
	if err != nil {
		return -1, addr, err
	}
	bound, err := sock.LocalAddr(fd)
	if err != nil {
		unix.Close(fd)
		return -1, addr, err
	}
	return fd, bound, nil
}

// checkInherited verifies that fd is a socket of key's protocol bound to
// key's address (any port when the configured one is 0), listening when
// TCP, and returns the address. Non-blocking and close-on-exec are set,
// whatever the sender left.
func checkInherited(fd int, key listenKey) (netip.AddrPort, error) {
	want := unix.SOCK_STREAM
	if key.protocol == config.ProtocolUDP {
		want = unix.SOCK_DGRAM
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("inherited socket for %v: %w", key, os.NewSyscallError("getsockopt", err))
	}
	if typ != want {
		return netip.AddrPort{}, fmt.Errorf("inherited socket for %v has type %d, want %d", key, typ, want)
	}
	if want == unix.SOCK_STREAM {
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 1 {
			return netip.AddrPort{}, fmt.Errorf("inherited socket for %v is not listening", key)
		}
	}
	bound, err := sock.LocalAddr(fd)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("inherited socket for %v: %w", key, err)
	}
	if bound.Addr() != key.addr.Addr() || (key.addr.Port() != 0 && bound.Port() != key.addr.Port()) {
		return netip.AddrPort{}, fmt.Errorf("inherited socket for %v is bound to %v", key, bound)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return netip.AddrPort{}, fmt.Errorf("inherited socket for %v: %w", key, os.NewSyscallError("fcntl", err))
	}
	unix.CloseOnExec(fd)
	return bound, nil
}

// Sockets returns duplicates of every listening socket the server serves,
// to hand to a new process at an upgrade; the caller closes them. The
// sockets of a removed UDP frontend, still draining, are left out.
func (s *Server) Sockets() ([]Socket, error) {
	s.mu.Lock()
	byBound := make(map[boundKey]listenKey, len(s.groups))
	for key, g := range s.groups {
		if g.owner != "" {
			byBound[boundKey{key.protocol, g.bound}] = key
		}
	}
	s.mu.Unlock()
	var out []Socket
	var errs []error
	dup := func(protocol string, fd int, bound netip.AddrPort) {
		key, ok := byBound[boundKey{protocol, bound}]
		if !ok || fd < 0 {
			return
		}
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("dup %v: %w", key, os.NewSyscallError("fcntl", err)))
			return
		}
		out = append(out, Socket{Protocol: protocol, Listen: key.addr, Frontend: key.frontend, Index: key.index, FD: nfd})
	}
	s.eachLoop(func(l *loop) {
		for _, ln := range l.listeners {
			dup(config.ProtocolTCP, ln.fd, ln.addr)
		}
		for _, ln := range l.udp {
			if !ln.draining {
				dup(config.ProtocolUDP, ln.fd, ln.addr)
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		for _, so := range out {
			unix.Close(so.FD)
		}
		return nil, err
	}
	return out, nil
}

// HandOff stops taking new clients once an upgrade gave the listening
// sockets to another process, which now accepts on them: TCP listeners are
// closed here (the sockets live on in the other process, their backlogs
// included), UDP sockets stop being read but stay open to send the replies
// of this process's flows. Open connections and flows run on; Shutdown then
// waits for them as usual. It returns once every loop has let go.
func (s *Server) HandOff() {
	s.eachLoop(func(l *loop) {
		for _, ln := range l.listeners {
			ln.close()
		}
		l.listeners = nil
		for _, ln := range l.udp {
			if ln.fd >= 0 {
				_ = l.poll.Delete(ln.fd)
			}
			ln.drain()
		}
	})
}
