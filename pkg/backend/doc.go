// Package backend holds splicer's backends and the copy-on-write sets the
// balancing strategies pick from.
//
// A Backend carries its configured identity (name, address, weight,
// max_connections, backup flag), runtime control (administrative State,
// health, runtime weight, slow start) and lock-free counters. A Set groups the
// backends of one frontend and publishes an immutable Snapshot through an
// atomic pointer: the snapshot lists only the backends that may take a new
// connection now, so a strategy never filters on the hot path.
//
// # Data plane contract
//
// At config load, for each frontend:
//
//	bs := []*backend.Backend{}                    // one backend.New(spec) per configured backend
//	strat, err := balance.New(name, opts)         // a Strategy is a Preparer
//	set, err := backend.NewSet(bs, strat, slowStart)
//
// Per new client connection, on any event loop goroutine, with no lock:
//
//	snap := set.Load()
//	b := strat.Pick(snap, balance.KeyFromAddr(clientIP)) // nil: snapshot empty
//	for tried := 1; b != nil && !b.TryAcquire(); tried++ {
//		b = snap.Next(b) // full, drained or down since the snapshot was built
//		if tried == snap.Len() {
//			b = nil // every backend refused: queue the client or close it
//		}
//	}
//	// connect; on failure: b.AddFailure(backend.ClassifyFailure(err)),
//	// b.Release(), then retry with snap.Next(b) the same way.
//	// on success: b.ObserveConnect(elapsed); relay, calling b.AddBytes(up, down).
//	b.Release() // at the end: exactly once per successful TryAcquire
//
// Runtime control (admin, health checks, reload) calls SetState, SetWeight and
// SetHealthy from any goroutine; each change rebuilds the owning Set's
// snapshot before returning. A backend reaching or leaving its
// max_connections cap is noticed inside TryAcquire and Release on the hot
// path, so that rebuild runs on a short-lived goroutine instead; until it
// lands, TryAcquire stays the authoritative gate.
//
// # Reload and discovery
//
// A Backend reports to the Set built from it most recently. A frontend's
// member list changes through Merge, matching by name: the same name at the
// same address is the same *Backend, so its active count, health, admin
// state and counters carry over, while its weight, max_connections and
// backup flag take the new spec (the weight only when the configured weight
// changed). MergePlan.Apply makes the changes and drains the retired
// backends; a Set built from MergePlan.Backends takes over and the old Set
// is Closed.
package backend
