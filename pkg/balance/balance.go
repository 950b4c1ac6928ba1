package balance

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/splicerlb/splicer/pkg/backend"
)

// Strategy names, as the config spells them.
const (
	RoundRobin = "roundrobin"
	LeastConn  = "leastconn"
	P2C        = "p2c"
	Maglev     = "maglev"
)

// DefaultMaglevTableSize is the maglev table size when Options leaves it 0:
// the prime the Maglev paper uses, about 64 slots per backend at 1000
// backends.
const DefaultMaglevTableSize = 65537

// MaxMaglevTableSize bounds the maglev table. A backend change updates it
// in time proportional to its size (about 10 ms at this size); building it
// from scratch, as a new Set does, takes size x backends hashes, about 2 s
// of CPU at 1000 backends. It is the largest prime below 1<<20, so every
// size in range has a prime to suggest. The config's bound is this one.
const MaxMaglevTableSize = 1048573

// ErrUnknownStrategy is wrapped by New for a name not in Names.
var ErrUnknownStrategy = errors.New("unknown balancing strategy")

// ErrInvalidOptions is wrapped by New for options the strategy cannot use.
var ErrInvalidOptions = errors.New("invalid balancing options")

// Strategy picks backends from snapshots. It is the Preparer of the Set
// whose snapshots it picks from; given a snapshot some other Preparer built,
// a strategy that needs prepared data returns nil.
type Strategy interface {
	backend.Preparer
	// Name returns the strategy's config name.
	Name() string
	// Pick returns a backend of s for a new connection, or nil when s
	// is empty. key identifies the client (see KeyFromAddr); only maglev
	// uses it. Pick takes no lock and allocates nothing; the caller must
	// still TryAcquire the result.
	Pick(s *backend.Snapshot, key uint64) *backend.Backend
}

// Options tunes the strategies. The zero value is ready to use.
type Options struct {
	// MaglevTableSize is the maglev lookup table size: a prime, at most
	// MaxMaglevTableSize, ideally 100 times the number of backends or more;
	// 0 means DefaultMaglevTableSize. Other strategies ignore it.
	MaglevTableSize int
}

// Names returns the valid strategy names, for the config validator.
func Names() []string { return []string{RoundRobin, LeastConn, P2C, Maglev} }

// New returns a fresh strategy by config name. A bad name wraps
// ErrUnknownStrategy; a bad option wraps ErrInvalidOptions.
func New(name string, o Options) (Strategy, error) {
	switch name {
	case RoundRobin:
		return &roundRobin{}, nil
	case LeastConn:
		return leastConn{}, nil
	case P2C:
		return p2c{}, nil
	case Maglev:
		size := o.MaglevTableSize
		if size == 0 {
			size = DefaultMaglevTableSize
		}
		if size < 2 || size > MaxMaglevTableSize || !big.NewInt(int64(size)).ProbablyPrime(0) {
			return nil, fmt.Errorf("maglev table size %d: want a prime up to %d: %w", size, MaxMaglevTableSize, ErrInvalidOptions)
		}
		return &maglev{size: uint64(size)}, nil
	default:
		return nil, fmt.Errorf("strategy %q (want %s): %w", name, strings.Join(Names(), ", "), ErrUnknownStrategy)
	}
}
