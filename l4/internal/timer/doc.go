// Package timer is a hashed timing wheel for one event loop: connect,
// idle, queue, half-close and UDP flow timeouts, driven by the epoll_wait
// timeout.
//
// Time is cut into ticks counted from the wheel's start. A timer due at
// time D fires in the first tick that begins at or after D: never early,
// and at most one tick late provided the loop calls Advance once the tick
// has begun (Next says when). The wheel has a power-of-two number of
// slots; a timer lives in the slot of its due tick modulo the slot count,
// on an intrusive doubly linked list, so Schedule and Stop are O(1) and
// allocate nothing. A timer more than one revolution away simply stays in
// its slot, skipped (it keeps its absolute due tick) until its revolution
// comes round.
//
// Advance visits each elapsed tick's slot once, but never more than one
// revolution of slots: after a sleep longer than a revolution every slot
// is visited once and every due timer is found, so the work is bounded by
// the slot count plus the timers in the visited slots, however long the
// loop slept.
//
// A Wheel and its Timers belong to one goroutine; nothing here is safe
// for concurrent use. A Timer is used with one Wheel only.
package timer
