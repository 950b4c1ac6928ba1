package backend

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
)

// MaxWeight is the largest weight a backend may have; weights are 1..MaxWeight.
const MaxWeight = 256

// ErrInvalid is wrapped by every error about a bad Spec, weight, state or Set
// membership, so callers can tell input faults with errors.Is.
var ErrInvalid = errors.New("invalid backend")

// Spec is the configured identity of a backend.
type Spec struct {
	// Name labels the backend in stats and seeds its maglev permutation, so
	// it must be unique within a Set; "" means Address.String().
	Name    string
	Address netip.AddrPort
	// Weight is 1..MaxWeight.
	Weight int
	// MaxConnections caps concurrent connections; 0 means unlimited.
	MaxConnections int
	// Backup backends take traffic only when no primary can.
	Backup bool
}

// cacheLinePad keeps fields written on every connection off the cache lines
// that Pick and rebuilds read, so event loops do not false-share them.
type cacheLinePad [64]byte

// Backend is one server behind a frontend. Its identity is fixed at New; its
// state, health and weight change at runtime; every method is safe for
// concurrent use and the hot-path ones (TryAcquire, Release, the counter
// updates) take no lock and allocate nothing.
type Backend struct {
	name string
	addr netip.AddrPort

	maxConns atomic.Int64 // 0: unlimited
	backup   atomic.Bool

	weight  atomic.Int32
	state   atomic.Int32 // a State
	down    atomic.Bool  // inverted so the zero value means healthy
	upSince atomic.Int64 // unix ns when slow start last began; 0: never
	owner   atomic.Pointer[Set]

	_      cacheLinePad
	active atomic.Int64
	peak   atomic.Int64 // the most active ever
	_      cacheLinePad
	ctr    counters
	health healthCounters
}

// New validates spec and returns a healthy, Ready backend with zeroed
// counters. The error wraps ErrInvalid and names the backend.
func New(spec Spec) (*Backend, error) {
	name := spec.Name
	if name == "" {
		name = spec.Address.String()
	}
	switch {
	case !spec.Address.IsValid():
		return nil, fmt.Errorf("backend %q: no address: %w", name, ErrInvalid)
	case spec.Weight < 1 || spec.Weight > MaxWeight:
		return nil, fmt.Errorf("backend %q: weight %d outside 1..%d: %w", name, spec.Weight, MaxWeight, ErrInvalid)
	case spec.MaxConnections < 0:
		return nil, fmt.Errorf("backend %q: negative max_connections %d: %w", name, spec.MaxConnections, ErrInvalid)
	}
	b := &Backend{name: name, addr: spec.Address}
	b.health.changed.Store(time.Now().UnixNano())
	b.maxConns.Store(int64(spec.MaxConnections))
	b.backup.Store(spec.Backup)
	b.weight.Store(int32(spec.Weight))
	return b, nil
}

// Spec returns the backend's identity and its runtime weight, cap and
// backup flag, as a Spec.
func (b *Backend) Spec() Spec {
	return Spec{Name: b.name, Address: b.addr, Weight: b.Weight(), MaxConnections: b.MaxConnections(), Backup: b.Backup()}
}

// Name returns the backend's unique label.
func (b *Backend) Name() string { return b.name }

// Address returns the address connections are made to.
func (b *Backend) Address() netip.AddrPort { return b.addr }

// MaxConnections returns the connection cap; 0 means unlimited.
func (b *Backend) MaxConnections() int { return int(b.maxConns.Load()) }

// Backup reports whether the backend only serves when no primary can.
func (b *Backend) Backup() bool { return b.backup.Load() }

// Weight returns the runtime weight: the configured one until SetWeight.
func (b *Backend) Weight() int { return int(b.weight.Load()) }

// SetWeight changes the runtime weight and rebuilds the owning Set's
// snapshot. It rejects weights outside 1..MaxWeight with an error wrapping
// ErrInvalid; to stop new traffic, use SetState(Drain).
func (b *Backend) SetWeight(w int) error {
	if w < 1 || w > MaxWeight {
		return fmt.Errorf("backend %q: weight %d outside 1..%d: %w", b.name, w, MaxWeight, ErrInvalid)
	}
	if b.weight.Swap(int32(w)) != int32(w) {
		b.changed()
	}
	return nil
}

// SetMaxConnections changes the connection cap (0: unlimited) and rebuilds
// the owning Set's snapshot. Connections above a lowered cap run on; the
// backend takes new ones again once it is below. A negative cap is
// rejected with an error wrapping ErrInvalid.
func (b *Backend) SetMaxConnections(n int) error {
	if n < 0 {
		return fmt.Errorf("backend %q: negative max_connections %d: %w", b.name, n, ErrInvalid)
	}
	if b.maxConns.Swap(int64(n)) != int64(n) {
		b.changed()
	}
	return nil
}

// SetBackup moves the backend between the primaries and the backups and
// rebuilds the owning Set's snapshot.
func (b *Backend) SetBackup(backup bool) {
	if b.backup.Swap(backup) != backup {
		b.changed()
	}
}

// State returns the administrative state. Health checkers skip Maint.
func (b *Backend) State() State { return State(b.state.Load()) }

// SetState changes the administrative state and rebuilds the owning Set's
// snapshot. Leaving Maint for Ready starts slow start, as a recovery does: a
// backend back from maintenance is usually cold. An unknown state is
// rejected with an error wrapping ErrInvalid.
func (b *Backend) SetState(s State) error {
	if !s.valid() {
		return fmt.Errorf("backend %q: state %d: %w", b.name, s, ErrInvalid)
	}
	old := State(b.state.Swap(int32(s)))
	if old == s {
		return nil
	}
	if old == Maint && s == Ready {
		b.upSince.Store(b.clock().UnixNano())
	}
	b.changed()
	return nil
}

// Healthy reports the last health verdict; a new backend is healthy.
func (b *Backend) Healthy() bool { return !b.down.Load() }

// SetHealthy records a health verdict. A change rebuilds the owning Set's
// snapshot, is counted (HealthCounters), and a recovery (down to up)
// starts slow start.
func (b *Backend) SetHealthy(up bool) {
	wasDown := b.down.Swap(!up)
	if wasDown != up {
		return
	}
	now := b.clock().UnixNano()
	b.health.changed.Store(now)
	if up {
		b.health.up.Add(1)
		b.upSince.Store(now)
	} else {
		b.health.down.Add(1)
	}
	b.changed()
}

// EffectiveWeight returns the weight strategies use now, in the same units as
// Weight: Weight itself, or less while slow start ramps it up (rounded up,
// at least 1).
func (b *Backend) EffectiveWeight() int {
	s := b.owner.Load()
	if s == nil {
		return b.Weight()
	}
	return int(rampWeight(uint32(b.Weight()), b.upSince.Load(), s.now().UnixNano(), s.slowStart))
}

// available is the single predicate deciding snapshot membership: the
// backend may take a new connection now.
func (b *Backend) available() bool {
	if b.down.Load() || State(b.state.Load()) != Ready {
		return false
	}
	max := b.maxConns.Load()
	return max == 0 || b.active.Load() < max
}

// changed rebuilds the owning Set's snapshot after a control-path change.
func (b *Backend) changed() {
	if s := b.owner.Load(); s != nil {
		s.rebuild()
	}
}

// clock returns the time source of the owning Set, so slow start and the
// snapshot agree on what "now" is.
func (b *Backend) clock() time.Time {
	if s := b.owner.Load(); s != nil {
		return s.now()
	}
	return time.Now()
}
