package backend

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by Apply on a Set that Close retired.
var ErrClosed = errors.New("backend set closed")

// Apply makes specs the Set's members at runtime (discovery), merged by
// identity: a spec whose name (defaulted to its address), address,
// max_connections and backup flag match a member keeps that *Backend, with
// its active count, health, state, runtime weight and counters; any other
// spec becomes a new Backend (healthy, Ready, zeroed counters); a member
// no spec keeps leaves the Set. The new snapshot is published before Apply
// returns, so no new connection goes to a removed backend after it.
// Connections already on a removed backend are the caller's to close or
// keep; Release on it stays correct.
//
// added and removed list the Backends that joined and left, in order. On
// error (a spec New refuses, two specs with one name, a closed Set)
// nothing changes; the error wraps ErrInvalid or ErrClosed.
func (s *Set) Apply(specs []Spec) (added, removed []*Backend, err error) {
	next := make([]*Backend, 0, len(specs))
	fresh := make([]*Backend, len(specs)) // a candidate for each spec
	names := make(map[string]bool, len(specs))
	for i, sp := range specs {
		b, err := New(sp)
		if err != nil {
			return nil, nil, err
		}
		if names[b.name] {
			return nil, nil, fmt.Errorf("backend %q listed twice: %w", b.name, ErrInvalid)
		}
		names[b.name] = true
		fresh[i] = b
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, nil, ErrClosed
	}
	kept := make(map[*Backend]bool, len(s.members))
	for _, b := range fresh {
		if old := s.member(b); old != nil {
			next = append(next, old)
			kept[old] = true
			continue
		}
		next = append(next, b)
		added = append(added, b)
	}
	for _, b := range s.members {
		if !kept[b] {
			removed = append(removed, b)
		}
	}
	// Adopt before publishing, as NewSet does; a removed backend reports
	// to no Set from now on.
	for _, b := range added {
		b.owner.Store(s)
	}
	for _, b := range removed {
		b.owner.CompareAndSwap(s, nil)
	}
	s.members = next
	s.published.Store(&next)
	s.rebuildLocked()
	return added, removed, nil
}

// member returns the member with b's identity, nil when none; s.mu held.
func (s *Set) member(b *Backend) *Backend {
	for _, m := range s.members {
		if m.name == b.name && m.addr == b.addr && m.maxConns == b.maxConns && m.backup == b.backup {
			return m
		}
	}
	return nil
}
