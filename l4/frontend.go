package l4

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/balance"
	"github.com/splicerlb/splicer/pkg/config"
)

// frontend is the runtime side of one [[frontend]]: its backends, the
// strategy that picks among them, and the addresses it is bound to.
//
// A reload that changes a frontend builds a new generation of it (see
// reload.go): listeners move to the new one, connections keep the one that
// accepted them, so they finish under the settings they started with. The
// generations of a frontend share one frontendShared: its counters, its
// caps' state and its wait queue.
type frontend struct {
	cfg *config.Frontend
	*frontendShared

	backends []*backend.Backend
	// specs[i] is what backends[i] is configured as: the base a later
	// merge compares with (backend.Merge).
	specs    []backend.Spec
	set      *backend.Set
	strategy balance.Strategy
	bound    []netip.AddrPort

	acl     acl
	clients *clientTable // nil without per-client limits
	// peers holds a UDP frontend's backend addresses in the forms the
	// UDP path compares and sends to; nil on a TCP frontend.
	peers map[*backend.Backend]*udpPeer
	// observer, when set, hears of connect outcomes and resets.
	observer Observer
	// send is what PROXY header each backend gets (proxy.go).
	send proxySend
}

// frontendShared is what every generation of a frontend shares.
type frontendShared struct {
	// Counters of the frontend as a whole; the per-backend ones live in
	// pkg/backend. active and total count client connections (UDP: flows);
	// closed counts ended ones by cause, refused clients included; bytesIn
	// and bytesOut count bytes relayed client to backend and back.
	active   atomic.Int64
	peak     atomic.Int64 // the most active ever
	total    atomic.Uint64
	closed   causeCounters
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	udp      udpCounters

	// blocked is set while a listener of this frontend has stopped at
	// the frontend's own cap; the next release on it resumes it.
	blocked atomic.Bool

	// logPolicy is the connection log's choice of lines, from the
	// latest generation's config (see logPolicy).
	logPolicy atomic.Pointer[logPolicy]

	queue waitQueue
}

func newFrontend(fc *config.Frontend) (*frontend, error) {
	specs := backendSpecs(fc)
	bs := make([]*backend.Backend, len(specs))
	for i, spec := range specs {
		var err error
		if bs[i], err = backend.New(spec); err != nil {
			return nil, fmt.Errorf("backend %s: %w", spec.Address, err)
		}
	}
	fe := &frontend{
		cfg: fc, frontendShared: &frontendShared{},
		backends: bs, specs: specs,
		acl:     acl{allow: fc.Allow, deny: fc.Deny},
		clients: newClientTable(fc.MaxConnectionsPerClient, fc.ConnectionRatePerClient),
	}
	fe.logPolicy.Store(newLogPolicy(fc))
	if err := fe.buildSet(); err != nil {
		return nil, err
	}
	fe.send = newProxySend(fc, fe.backends)
	return fe, nil
}

// backendSpecs is fc's backends as backend specs.
func backendSpecs(fc *config.Frontend) []backend.Spec {
	specs := make([]backend.Spec, len(fc.Backends))
	for i, bc := range fc.Backends {
		specs[i] = backend.Spec{
			Name:           bc.Name,
			Address:        bc.Address,
			Weight:         bc.Weight,
			MaxConnections: bc.MaxConnections,
			Backup:         bc.Backup,
		}
	}
	return specs
}

// buildSet makes fe's strategy and its Set of fe.backends, which the Set
// adopts, and the UDP peers of a UDP frontend.
func (fe *frontend) buildSet() error {
	fc := fe.cfg
	strat, err := balance.New(fc.Strategy, balance.Options{MaglevTableSize: fc.MaglevTableSize})
	if err != nil {
		return err
	}
	set, err := backend.NewSet(fe.backends, strat, fc.SlowStart)
	if err != nil {
		return err
	}
	fe.set, fe.strategy = set, strat
	if fc.Protocol == config.ProtocolUDP {
		fe.peers = newUDPPeers(fe.backends)
	} else {
		// A backend coming up, back to ready or below its cap is capacity
		// that queued clients may take.
		set.OnChange(fe.serveQueue)
	}
	return nil
}

// pick chooses a backend for a client with balancing key key, skipping the
// ones in tried, and takes a connection slot on it. It returns nil when no
// backend can take the client.
func (fe *frontend) pick(key uint64, tried []*backend.Backend) *backend.Backend {
	// A backend can fill up between the snapshot and TryAcquire; it then
	// leaves the next snapshot, so a few rounds settle it.
	for round := 0; round < 4; round++ {
		snap := fe.set.Load()
		b := fe.strategy.Pick(snap, key)
		if b == nil {
			return nil
		}
		if isTried(tried, b) {
			if b = nextUntried(snap, b, tried); b == nil {
				return nil
			}
		}
		if b.TryAcquire() {
			return b
		}
	}
	return nil
}

// nextUntried walks the snapshot from b for a backend not yet tried.
func nextUntried(snap *backend.Snapshot, b *backend.Backend, tried []*backend.Backend) *backend.Backend {
	for i := 1; i < snap.Len(); i++ {
		if b = snap.Next(b); b == nil {
			return nil
		}
		if !isTried(tried, b) {
			return b
		}
	}
	return nil
}

func isTried(tried []*backend.Backend, b *backend.Backend) bool {
	for _, t := range tried {
		if t == b {
			return true
		}
	}
	return false
}

// tuneListener sets TCP_NODELAY, SO_OOBINLINE and the frontend's
// keepalive settings on a listening socket: Linux copies them to every
// socket it accepts, so client sockets cost no setsockopt of their own.
func (fe *frontend) tuneListener(fd int) {
	// Failures here cost latency, dead-peer detection or an urgent byte's
	// place in the stream, not the relay's correctness.
	_ = sock.SetNoDelay(fd)
	_ = sock.SetOOBInline(fd)
	fe.setKeepalive(fd)
}

// setKeepalive applies the frontend's keepalive settings to fd, if enabled.
func (fe *frontend) setKeepalive(fd int) {
	if fe.cfg.TCPKeepalive {
		_ = sock.SetKeepAlive(fd, fe.cfg.KeepaliveIdle, fe.cfg.KeepaliveInterval, fe.cfg.KeepaliveCount)
	}
}

// notePeak raises the frontend's peak to n connections (UDP: flows) open,
// called once a connection is accepted (a flow opened). One load in the
// common case: a CAS only for a new peak.
func (fe *frontend) notePeak(n int64) {
	for {
		cur := fe.peak.Load()
		if n <= cur || fe.peak.CompareAndSwap(cur, n) {
			return
		}
	}
}

// keyFor is the balancing key of a client: a hash of its IP address, so a
// client keeps its backend under maglev whatever its source port.
func keyFor(a netip.Addr) uint64 { return balance.KeyFromAddr(a) }
