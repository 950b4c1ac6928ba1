// Package l4 is splicer's data plane: epoll event loops that accept client
// connections, pick a backend, connect to it without blocking and relay
// bytes both ways with splice(2) through pooled pipes; and UDP frontends,
// whose datagrams are relayed per client flow.
//
// A Server runs Workers loops. Each loop owns one SO_REUSEPORT listening
// socket per frontend address, so the kernel spreads new connections over
// the loops, and every connection lives on the loop that accepted it for
// its whole life: only that loop touches its fds. Other goroutines reach a
// loop by posting a task and waking its poller.
//
// # Reading order
//
// The files follow a connection from accept to close:
//
//   - server.go: the Server and its lifecycle (see Server).
//   - loop.go: an event loop: epoll, tokens, tasks, the timer wheel.
//   - listener.go: accepting; admission.go: the caps, the access list and
//     the per-client limits a client passes before its first try
//     (clients.go holds the per-client table).
//   - proxy.go: reading a PROXY header first, on an accept_proxy frontend.
//   - conn.go: a connection's states, connecting with retries, timers, and
//     its end (end, reportEnd); queue.go: waiting for a backend slot.
//   - relay.go: moving bytes: the pump of each direction, the decision
//     after each turn, half-close, flush on FIN, resets delivered after
//     the bytes before them.
//   - cause.go: how a connection ended, one Cause each.
//   - frontend.go: a frontend's shared state across reloads, its strategy.
//   - udp.go, udpflow.go: UDP sockets, batches and flows.
//   - connlog.go, connlogwrite.go: the connection log's rings and writer.
//   - inspect.go, connpage.go, observe.go, liveness.go: what the admin
//     API, the metrics and the health checks read or do.
//   - reload.go, inherit.go, handoff.go, affinity.go: reloads, listening
//     sockets passed to a new process, connections handed over at an
//     upgrade, CPU pinning.
//
// # A connection's states
//
//	accept, admitted (admission.go)
//	  |
//	  +--> header (accept_proxy only: proxy.go) --+
//	  |                                           |
//	  v                                           |
//	connecting <----------------------------------+
//	  |  ^  \
//	  |  |   '--> queued (every backend at its cap)
//	  |  |        or starved (no fd for the backend socket)
//	  |  '------- a slot or an fd came; or a try failed: the next backend
//	  | connected
//	  v
//	relaying ----> closing (a socket failed: deliver what came before it,
//	  |              |      then reset the other side)
//	  v              v
//	closed: end, with one Cause, counted and logged (from any state)
//
// The listener creates the connection (startConn) once admitted; the loop
// moves it on events and timers: onConnectEvent (connecting to relaying,
// or the next try), the queue and the fd-starvation list (a slot or an fd
// came), relay and decide (relaying to closing or closed), onTimer (the
// connect, queue, header, idle and half-close timeouts). Every way out
// goes through end, which closes the fds, except a hand-over at an upgrade
// (detach in handoff.go), which passes them to the new process.
package l4
