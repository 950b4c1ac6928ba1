package backend

import "time"

// Snapshot is an immutable view of a Set at one instant: the backends that
// could take a new connection when it was built, with the weights strategies
// use. Readers share it without locks; a change builds a new one.
//
// Indexes 0..Len()-1 follow configuration order. The snapshot serves one
// tier: the primaries while any primary is available, else the backups.
type Snapshot struct {
	backends []*Backend // available members of tier, in tier order
	weights  []uint32   // effective weight of backends[i]
	tier     []Member
	prepared any
}

// Member is one backend of the tier a snapshot serves, available or not,
// as the snapshot saw it. Weights are on the snapshot's own scale: only
// ratios between members of one snapshot mean anything.
type Member struct {
	Backend *Backend
	// Weight is the backend's full (runtime) weight.
	Weight uint32
	// Effective is the weight to balance with now: Weight, or less during
	// slow start; 0 when the backend cannot take a connection.
	Effective uint32
}

// Len returns the number of backends that may take a new connection.
func (s *Snapshot) Len() int { return len(s.backends) }

// Backend returns the i-th available backend, 0 <= i < Len().
func (s *Snapshot) Backend(i int) *Backend { return s.backends[i] }

// Weight returns the effective weight of Backend(i): positive, at most
// MaxWeight, on the snapshot's scale.
func (s *Snapshot) Weight(i int) uint32 { return s.weights[i] }

// Tier returns every backend of the tier this snapshot serves, available or
// not, in configuration order. Consistent hashing builds its stable base
// from it, so that a backend leaving the snapshot moves only its own keys.
// The slice is shared: do not modify it.
func (s *Snapshot) Tier() []Member { return s.tier }

// Prepared returns what the Set's Preparer computed for this snapshot, or
// nil without one.
func (s *Snapshot) Prepared() any { return s.prepared }

// Next returns the available backend after the given one, wrapping around, so
// a caller retrying after a failed TryAcquire or connect visits every backend
// once by calling it Len()-1 times. It returns nil when nothing else is
// available, and Backend(0) when after is not in the snapshot. It scans, so
// keep it off the first-pick path.
func (s *Snapshot) Next(after *Backend) *Backend {
	n := len(s.backends)
	for i, b := range s.backends {
		if b == after {
			if n == 1 {
				return nil
			}
			return s.backends[(i+1)%n]
		}
	}
	if n == 0 {
		return nil
	}
	return s.backends[0]
}

// buildSnapshot returns the snapshot of members at now (unix ns) for a slow
// start window, without prepared data, and when the next slow start step is
// due (ok false when no available backend is ramping).
func buildSnapshot(members []*Backend, window time.Duration, now int64) (snap *Snapshot, nextStep int64, ok bool) {
	// Read each backend's changing fields once: they may change under us,
	// and one snapshot must not see two values of the same field. A change
	// racing with this build triggers another build after it.
	type reading struct {
		up, backup bool
		weight     uint32
	}
	seen := make([]reading, len(members))
	primaryUp, backupUp := false, false
	for i, b := range members {
		seen[i] = reading{up: b.available(), backup: b.backup.Load(), weight: uint32(b.weight.Load())}
		primaryUp = primaryUp || seen[i].up && !seen[i].backup
		backupUp = backupUp || seen[i].up && seen[i].backup
	}
	useBackups := !primaryUp && backupUp

	// Scale weights so the heaviest member of the tier lands in
	// (MaxWeight/2, MaxWeight]: slow start then has over MaxWeight/2 units
	// to ramp through even when every weight is 1, while a round-robin
	// cycle stays within MaxWeight entries per backend.
	heaviest := uint32(1)
	for i := range members {
		if seen[i].backup == useBackups {
			heaviest = max(heaviest, seen[i].weight)
		}
	}
	scale := MaxWeight / heaviest

	snap = &Snapshot{
		backends: make([]*Backend, 0, len(members)),
		weights:  make([]uint32, 0, len(members)),
		tier:     make([]Member, 0, len(members)),
	}
	for i, b := range members {
		if seen[i].backup != useBackups {
			continue
		}
		m := Member{Backend: b, Weight: seen[i].weight * scale}
		if seen[i].up {
			since := b.upSince.Load()
			m.Effective = rampWeight(m.Weight, since, now, window)
			snap.backends = append(snap.backends, b)
			snap.weights = append(snap.weights, m.Effective)
			if t, ramping := nextRampStep(since, now, window); ramping && (!ok || t < nextStep) {
				nextStep, ok = t, true
			}
		}
		snap.tier = append(snap.tier, m)
	}
	return snap, nextStep, ok
}
