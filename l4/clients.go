package l4

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// clientShards spreads the per-client table over independently locked
// shards, so loops accepting at once rarely wait on each other.
const clientShards = 16

// maxClientsPerShard bounds the per-client table: 16 × 4096 = 65536 client
// addresses per frontend, about 4 MiB at most.
const maxClientsPerShard = 4096

// Why a client was refused by the per-client limits.
const (
	refusedNone = iota
	refusedPerClient
	refusedRate
	refusedTableFull
)

// bucket is a token bucket: rate tokens per second, up to burst.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills the bucket for the time since its last use and takes one
// token, or reports false when none is left.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if !b.last.IsZero() {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	} else {
		b.tokens = burst
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether the bucket would be back to its burst at now, so
// forgetting it changes nothing.
func (b *bucket) full(now time.Time, rate, burst float64) bool {
	return b.last.IsZero() || b.tokens+now.Sub(b.last).Seconds()*rate >= burst
}

// clientEntry is one source address's state.
type clientEntry struct {
	active int
	bucket bucket
}

type clientShard struct {
	mu        sync.Mutex
	m         map[netip.Addr]*clientEntry
	lastSweep time.Time
}

// sweepEvery is how often a shard drops its idle entries, at the first new
// address after the period: expiry driven by traffic, with no goroutine.
const sweepEvery = 10 * time.Second

// clientTable enforces max_connections_per_client and
// connection_rate_per_client. Its memory is bounded: entries that hold
// nothing (no connection, a full bucket) expire every sweepEvery, a full
// shard forgets them at once, and a new address is refused only when none
// can be forgotten.
type clientTable struct {
	maxConns int     // 0: no cap
	rate     float64 // new connections per second; 0: no limit
	seed     maphash.Seed
	shards   [clientShards]clientShard
}

func newClientTable(maxConns, rate int) *clientTable {
	if maxConns == 0 && rate == 0 {
		return nil
	}
	t := &clientTable{maxConns: maxConns, rate: float64(rate), seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[netip.Addr]*clientEntry)
	}
	return t
}

func (t *clientTable) shard(ip netip.Addr) *clientShard {
	return &t.shards[maphash.Comparable(t.seed, ip)%clientShards]
}

// admit counts a new connection from ip, or returns why it is refused.
func (t *clientTable) admit(ip netip.Addr, now time.Time) int {
	s := t.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[ip]
	if e == nil {
		if now.Sub(s.lastSweep) >= sweepEvery {
			t.forgetIdle(s, now)
			s.lastSweep = now
		}
		if len(s.m) >= maxClientsPerShard && !t.forgetIdle(s, now) {
			return refusedTableFull
		}
		e = &clientEntry{}
		s.m[ip] = e
	}
	if t.maxConns > 0 && e.active >= t.maxConns {
		return refusedPerClient
	}
	if t.rate > 0 && !e.bucket.take(now, t.rate, t.rate) {
		return refusedRate
	}
	e.active++
	return refusedNone
}

// adopt counts a connection from ip handed over by another process at an
// upgrade: it exists already, so no limit refuses it.
func (t *clientTable) adopt(ip netip.Addr) {
	s := t.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[ip]
	if e == nil {
		e = &clientEntry{}
		s.m[ip] = e
	}
	e.active++
}

// release counts a connection from ip as ended.
func (t *clientTable) release(ip netip.Addr) {
	s := t.shard(ip)
	s.mu.Lock()
	if e := s.m[ip]; e != nil && e.active > 0 {
		e.active--
		if e.active == 0 && t.rate == 0 {
			delete(s.m, ip) // nothing left to remember
		}
	}
	s.mu.Unlock()
}

// forgetIdle drops the shard's entries that hold nothing; it reports
// whether any went.
func (t *clientTable) forgetIdle(s *clientShard, now time.Time) bool {
	n := len(s.m)
	for ip, e := range s.m {
		if e.active == 0 && (t.rate == 0 || e.bucket.full(now, t.rate, t.rate)) {
			delete(s.m, ip)
		}
	}
	return len(s.m) < n
}

// size is the number of addresses remembered, for tests and stats.
func (t *clientTable) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
