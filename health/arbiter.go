package health

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// arbiter keeps a role = "primary" frontend on one primary. Several
// backends answer as primary during a failover (the replica is promoted
// while the old primary still runs), in a split brain, or when an old
// primary comes back on its own: sending writes to two of them loses the
// writes of whichever is abandoned. So among the backends whose latest
// probe saw a primary (the claimants), one ranks first:
//
//  1. the highest epoch: PostgreSQL's timeline, which every promotion
//     raises, so the promoted server outranks the one it replaced even if
//     that one restarts;
//  2. then the one that became primary last while watched: a promotion is
//     the most recent decision (Redis and MySQL carry no epoch);
//  3. then, among those primary since their first probe, the one listed
//     first.
//
// A claimant outranked by one that is up is superseded: taken down at once
// and kept down (its probes fail) while that holds. A claimant whose epoch
// is below the highest this frontend has seen is stale, and kept down even
// when no higher one is up: a PostgreSQL primary left on an older timeline
// was never demoted, and its writes would be lost at the next rewind.
type arbiter struct {
	mu       sync.Mutex
	claims   map[*target]claim
	maxEpoch uint64 // highest epoch seen on a primary
	now      func() time.Time
}

// claim is one backend's standing as primary.
type claim struct {
	epoch uint64
	// since is when the current run of primary results began; zero when
	// the backend was primary from its first probe.
	since time.Time
}

func newArbiter() *arbiter {
	return &arbiter{claims: make(map[*target]claim), now: time.Now}
}

// inherit takes over prev's standing: the highest epoch seen, and the
// claims of the targets that map to one of a's (nil: a backend a does not
// watch). prev's scheduler has stopped; a's has not started.
func (a *arbiter) inherit(prev *arbiter, to func(*target) *target) {
	prev.mu.Lock()
	defer prev.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.maxEpoch = max(a.maxEpoch, prev.maxEpoch)
	for t, c := range prev.claims {
		if nt := to(t); nt != nil {
			a.claims[nt] = c
		}
	}
}

// outranks reports whether a (with claim ac) ranks before b.
func outranks(a *target, ac claim, b *target, bc claim) bool {
	switch {
	case ac.epoch != bc.epoch:
		return ac.epoch > bc.epoch
	case !ac.since.Equal(bc.since):
		return ac.since.After(bc.since)
	}
	return a.order < b.order
}

// judge records t's latest result and returns it, failed when t is
// superseded or stale, with superseded true when it must go down at once.
// Only t's goroutine calls it for t.
func (a *arbiter) judge(t *target, r Result) (Result, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !r.OK || r.Role != config.RolePrimary {
		delete(a.claims, t)
		return r, false
	}
	c, had := a.claims[t]
	if !had || c.epoch != r.Epoch {
		c = claim{epoch: r.Epoch}
		if !t.state.Load().LastCheck.IsZero() {
			c.since = a.now() // it turned primary while watched
		}
		a.claims[t] = c
	}
	if r.Epoch < a.maxEpoch {
		r.OK = false
		r.Msg += fmt.Sprintf("; stale: a primary on timeline %d was seen, this one is on %d", a.maxEpoch, r.Epoch)
		return r, true
	}
	a.maxEpoch = max(a.maxEpoch, r.Epoch)
	for o, oc := range a.claims {
		if o != t && o.b.Healthy() && outranks(o, oc, t, c) {
			r.OK = false
			r.Msg += "; superseded: " + why(o, oc, c)
			return r, true
		}
	}
	return r, false
}

// demoteOthers takes down, through their own goroutines, the claimants
// that are up and outranked by t, which is up.
func (a *arbiter) demoteOthers(t *target) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.claims[t]
	if !ok {
		return
	}
	for o, oc := range a.claims {
		if o == t || !o.b.Healthy() || !outranks(t, c, o, oc) {
			continue
		}
		cause := "superseded: " + why(t, c, oc)
		o.demoteCause.Store(&cause)
		select {
		case o.demote <- struct{}{}:
		default: // a demotion is pending already
		}
	}
}

// forget drops a backend no longer watched; nil-safe.
func (a *arbiter) forget(t *target) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.claims, t)
}

// why says why winner (with claim wc) outranks a backend with claim lc.
func why(winner *target, wc, lc claim) string {
	name := winner.b.Name()
	switch {
	case wc.epoch != lc.epoch:
		return name + " is primary on a later timeline (" + strconv.FormatUint(wc.epoch, 10) + ")"
	case !wc.since.Equal(lc.since):
		return name + " became primary later"
	}
	return name + ", listed first, is primary too"
}
