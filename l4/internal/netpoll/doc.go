// Package netpoll wraps one epoll instance and an eventfd used to wake it.
//
// A Poller belongs to one event loop goroutine: only that goroutine calls
// Add, Modify, Delete, Wait and Close. Wake is the single method other
// goroutines may call; it is how they tell the loop that a task was posted.
//
// Invariants:
//   - Every fd the poller creates is CLOEXEC; the eventfd is non-blocking.
//   - The eventfd is registered with a reserved data value (see
//     ErrReservedData). Wait consumes its event and removes it from the
//     returned slice, so callers only ever see events for their own fds.
//   - Wake-ups coalesce: an "awake pending" flag is flipped 0→1 by CAS before
//     the eventfd is written, and cleared by Wait after draining the eventfd,
//     so any number of Wake calls between two Waits cost one write(2).
//   - A task posted before Wake is visible to the loop once a Wait that
//     started after the post returns; the loop must therefore look at its
//     task queue after every Wait, whatever Wait returned.
//
// Epoll data is a 64-bit value; Token and SplitToken pack a connection slot
// and a generation into it so that a stale event for an fd closed earlier in
// the same batch, whose slot was reused, can be recognised and ignored.
package netpoll
