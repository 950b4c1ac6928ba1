// Package balance holds splicer's balancing strategies. Each picks a backend
// from a backend.Snapshot with no lock and no allocation; whatever a strategy
// needs beyond the snapshot's backends and weights (a round-robin schedule,
// a maglev table) it computes in Prepare when the Set builds the snapshot.
//
// Use one Strategy per frontend and make it the Set's Preparer:
//
//	strat, err := balance.New(name, balance.Options{MaglevTableSize: n})
//	set, err := backend.NewSet(backends, strat, slowStart)
//	b := strat.Pick(set.Load(), balance.KeyFromAddr(clientIP))
//
// Strategies are safe for concurrent use by any number of event loops.
//
// The strategies are roundrobin (smooth weighted round robin), leastconn
// (lowest active connections per weight), p2c (the power of two random
// choices on that load) and maglev (consistent hashing of the client
// address, so that every instance sends a client to the same backend);
// New makes one by its config name and Names lists them.
//
// A strategy of one's own implements Strategy: Prepare precomputes what
// Pick will read (or returns nil), and Pick reads only the snapshot, its
// prepared value and the backends' atomics. The snapshot already holds
// only the backends that may take a connection (ready, healthy, under
// their cap, of the serving tier), with weights on its own scale, so a
// strategy filters nothing; the caller still calls TryAcquire on the pick
// and moves on with Snapshot.Next when it fails. ExampleStrategy shows one
// driven through a backend.Set.
package balance
