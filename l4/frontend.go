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
type frontend struct {
	cfg *config.Frontend
	// set holds the backends; its members change only through
	// Server.SetBackends (discovery), so read them with set.Backends().
	set      *backend.Set
	strategy balance.Strategy
	bound    []netip.AddrPort

	// Counters of the frontend as a whole; the per-backend ones live in
	// pkg/backend. active and total count client connections (UDP: flows);
	// noBackend counts clients closed because no backend could take them;
	// bytesIn and bytesOut count bytes relayed client to backend and back.
	active    atomic.Int64
	total     atomic.Uint64
	noBackend atomic.Uint64
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
	udp       udpCounters
	// denied counts clients refused by the access list; perClient and
	// rateLimited those refused by the per-client limits.
	denied      atomic.Uint64
	perClient   atomic.Uint64
	rateLimited atomic.Uint64

	// blocked is set while a listener of this frontend has stopped at
	// the frontend's own cap; the next release on it resumes it.
	blocked atomic.Bool

	acl     acl
	clients *clientTable // nil without per-client limits
	// peers holds a UDP frontend's backend addresses in the forms the
	// UDP path compares and sends to; nil on a TCP frontend.
	peers map[*backend.Backend]*udpPeer
	queue waitQueue
	// observer, when set, hears of connect outcomes and resets.
	observer Observer
}

func newFrontend(fc *config.Frontend) (*frontend, error) {
	strat, err := balance.New(fc.Strategy, balance.Options{MaglevTableSize: fc.MaglevTableSize})
	if err != nil {
		return nil, err
	}
	bs := make([]*backend.Backend, len(fc.Backends))
	for i, bc := range fc.Backends {
		bs[i], err = backend.New(backend.Spec{
			Name:           bc.Name,
			Address:        bc.Address,
			Weight:         bc.Weight,
			MaxConnections: bc.MaxConnections,
			Backup:         bc.Backup,
		})
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", bc.Address, err)
		}
	}
	set, err := backend.NewSet(bs, strat, fc.SlowStart)
	if err != nil {
		return nil, err
	}
	fe := &frontend{
		cfg: fc, set: set, strategy: strat,
		acl:     acl{allow: fc.Allow, deny: fc.Deny},
		clients: newClientTable(fc.MaxConnectionsPerClient, fc.ConnectionRatePerClient),
	}
	if fc.Protocol == config.ProtocolUDP {
		fe.peers = newUDPPeers(bs)
	}
	return fe, nil
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

// tuneListener sets TCP_NODELAY and the frontend's keepalive settings on a
// listening socket: Linux copies them to every socket it accepts, so client
// sockets cost no setsockopt of their own.
func (fe *frontend) tuneListener(fd int) {
	// Failures here cost latency or dead-peer detection, not correctness.
	_ = sock.SetNoDelay(fd)
	fe.setKeepalive(fd)
}

// setKeepalive applies the frontend's keepalive settings to fd, if enabled.
func (fe *frontend) setKeepalive(fd int) {
	if fe.cfg.TCPKeepalive {
		_ = sock.SetKeepAlive(fd, fe.cfg.KeepaliveIdle, fe.cfg.KeepaliveInterval, fe.cfg.KeepaliveCount)
	}
}

// keyFor is the balancing key of a client: a hash of its IP address, so a
// client keeps its backend under maglev whatever its source port.
func keyFor(a netip.Addr) uint64 { return balance.KeyFromAddr(a) }
