//go:build linux

package sockmap

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Map holds the kernel objects of the kernel relay: the verdict program
// and its two socket maps.
//
//   - peers (a sockhash) maps a socket's cookie to its peer socket: the
//     program looks the receiving socket's peer up there. Being in peers
//     attaches nothing to a socket.
//   - verdict (a sockhash, keyed by a socket's own cookie) carries the
//     program: the kernel runs it on every socket in it.
//
// Add puts both sockets of a pair in peers before either enters verdict,
// so the program never runs for a socket whose peer it cannot find.
//
// A Map is safe for use by several goroutines: each call is one or a few
// bpf(2) calls on kernel objects that do their own locking.
type Map struct {
	prog    int
	peers   int
	verdict int
}

// Open creates the maps for up to maxPairs socket pairs, loads the
// verdict program and attaches it. It needs CAP_BPF and CAP_NET_ADMIN (or
// CAP_SYS_ADMIN). A refused program yields a *LoadError with the
// verifier's log; every error says which step failed, and nothing is left
// open.
func Open(maxPairs int) (*Map, error) {
	if maxPairs < 1 {
		return nil, fmt.Errorf("sockmap: %d pairs", maxPairs)
	}
	m := &Map{prog: -1, peers: -1, verdict: -1}
	var err error
	if m.peers, err = createMap(unix.BPF_MAP_TYPE_SOCKHASH, 8, 8, uint32(2*maxPairs), "splicer_peers"); err != nil {
		return nil, fmt.Errorf("sockmap: creating the peer map: %w", err)
	}
	if m.verdict, err = createMap(unix.BPF_MAP_TYPE_SOCKHASH, 8, 8, uint32(2*maxPairs), "splicer_verdict"); err != nil {
		m.Close()
		return nil, fmt.Errorf("sockmap: creating the verdict map: %w", err)
	}
	if m.prog, err = loadProgram(verdictProgram(m.peers), "splicer_redir"); err != nil {
		m.Close()
		return nil, fmt.Errorf("sockmap: %w", err)
	}
	if err := attachProg(m.verdict, m.prog, unix.BPF_SK_SKB_STREAM_VERDICT); err != nil {
		m.Close()
		return nil, fmt.Errorf("sockmap: attaching the verdict program: %w", err)
	}
	return m, nil
}

// Close releases the program and the maps. Sockets still in a map leave
// it (the kernel drops what their redirect queues still hold): remove
// every pair first.
func (m *Map) Close() error {
	var errs []error
	for _, fd := range []*int{&m.prog, &m.verdict, &m.peers} {
		if *fd >= 0 {
			errs = append(errs, unix.Close(*fd))
			*fd = -1
		}
	}
	return errors.Join(errs...)
}

// Cookie is the kernel's identifier of the socket fd (SO_COOKIE), which
// the maps are keyed by.
func Cookie(fd int) (uint64, error) {
	var c uint64
	l := uint32(unsafe.Sizeof(c))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_COOKIE,
		uintptr(unsafe.Pointer(&c)), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return 0, errno
	}
	return c, nil
}

// Pair is two connected TCP sockets relayed to each other by the kernel.
type Pair struct {
	A, B         int    // the fds
	CookA, CookB uint64 // their cookies
}

// Add starts the kernel relaying between the sockets a and b: from its
// return on, every byte either one receives is sent out of the other, in
// order, with no wake-up of user space. Bytes already in a socket's
// receive queue when Add is called are relayed too (Add prods the
// program to read them). On error nothing was changed.
//
// The caller must not read from or write to either socket while the pair
// is in the map: the kernel owns their data (the package doc says what
// the caller may still do). Both must be established TCP sockets
// (EOPNOTSUPP otherwise).
func (m *Map) Add(a, b int) (Pair, error) {
	p := Pair{A: a, B: b}
	var err error
	if p.CookA, err = Cookie(a); err != nil {
		return p, fmt.Errorf("sockmap: SO_COOKIE: %w", err)
	}
	if p.CookB, err = Cookie(b); err != nil {
		return p, fmt.Errorf("sockmap: SO_COOKIE: %w", err)
	}
	steps := []struct {
		m   int
		key uint64
		fd  int
	}{{m.peers, p.CookA, b}, {m.peers, p.CookB, a}, {m.verdict, p.CookA, a}, {m.verdict, p.CookB, b}}
	for i, s := range steps {
		fd := uint64(s.fd)
		if err := updateElem(s.m, unsafe.Pointer(&s.key), unsafe.Pointer(&fd), unix.BPF_NOEXIST); err != nil {
			for _, u := range steps[:i] {
				_ = deleteElem(u.m, unsafe.Pointer(&u.key))
			}
			return p, fmt.Errorf("sockmap: adding a socket: %w", err)
		}
	}
	// Bytes that arrived before the program was attached wait in the
	// receive queues, and the program runs only when more arrive. Setting
	// SO_RCVLOWAT makes TCP signal data-ready at once when data is queued,
	// which runs the program on them now.
	prod(a)
	prod(b)
	return p, nil
}

// prod makes the kernel process fd's queued bytes.
func prod(fd int) { _ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1) }

// Remove stops the kernel relaying for the pair. Bytes it had taken from
// one socket but not yet written into the other are dropped by the
// kernel: call it only once it holds none (TCP_INFO accounting: every
// byte one socket received is in the other's send queue), or when the
// connection is being reset anyway. Sockets already gone from the maps
// (closing a socket takes it out) are no error.
func (m *Map) Remove(p Pair) error {
	var errs []error
	for _, s := range []struct {
		m   int
		key uint64
	}{{m.verdict, p.CookA}, {m.verdict, p.CookB}, {m.peers, p.CookA}, {m.peers, p.CookB}} {
		if err := deleteElem(s.m, unsafe.Pointer(&s.key)); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
