package backend

// Active returns the connections currently held on the backend: successful
// TryAcquire calls not yet Released. It is the count leastconn and p2c
// compare. A TryAcquire racing past the cap may show in it for an instant.
func (b *Backend) Active() int64 { return b.active.Load() }

// TryAcquire reserves one connection slot. It fails, changing nothing, when
// the backend is down, not Ready or at MaxConnections: a snapshot loaded just
// before a drain or a failed check must not send it new connections. A
// success counts one connection in Total and must be paired with exactly one
// Release.
//
// Reaching the cap asks the owning Set for a snapshot without this backend;
// the rebuild runs off the caller's goroutine, so TryAcquire never blocks.
func (b *Backend) TryAcquire() bool {
	if b.down.Load() || State(b.state.Load()) != Ready || !b.take() {
		return false
	}
	b.ctr.total.Add(1)
	return true
}

// TryAdopt takes a slot for a connection that exists already, handed over
// by another process at an upgrade. Unlike TryAcquire it ignores health
// and state (a drained backend keeps the connections it has), but not the
// cap: it fails, changing nothing, at MaxConnections. A success is paired
// with one Release, and is not counted in Total (the connection was
// counted where it began).
func (b *Backend) TryAdopt() bool { return b.take() }

// take counts one more connection unless that passes the cap.
func (b *Backend) take() bool {
	n := b.active.Add(1)
	if max := b.maxConns.Load(); max > 0 {
		if n > max {
			// Undo through the same path as a release: if holders left
			// meanwhile, this decrement may be the one that leaves the cap.
			b.leave()
			return false
		}
		if n == max {
			b.capCrossed()
		}
	}
	raisePeak(&b.peak, n)
	return true
}

// Release frees a slot taken by a successful TryAcquire. Leaving the cap asks
// the owning Set to bring the backend back into its snapshot.
func (b *Backend) Release() { b.leave() }

// leave decrements the active count. The count crosses the cap boundary
// downwards exactly when a decrement lands on maxConns-1; every such crossing,
// like every increment landing on maxConns, requests a rebuild that reads the
// count afresh, so the last crossing always wins.
func (b *Backend) leave() {
	if n, max := b.active.Add(-1), b.maxConns.Load(); max > 0 && n == max-1 {
		b.capCrossed()
	}
}

func (b *Backend) capCrossed() {
	if s := b.owner.Load(); s != nil {
		s.requestRebuild()
	}
}
