// Package splice moves a connection's bytes from one socket to another
// through a Carrier: a kernel pipe filled and drained with splice(2), so
// the bytes never enter user space, or a user-space Buffer when no pipe
// can be had.
//
// The event loop drives a Carrier in two steps, Fill from the source and
// Drain to the destination, and each step returns unix.EAGAIN to the loop
// instead of blocking. The rules that keep this correct:
//
//   - Fill is only called on an empty carrier (it refuses otherwise with
//     ErrNotEmpty). splice's EAGAIN can mean "socket empty" or "pipe full";
//     with an empty pipe it can only mean the first, so the loop knows to
//     wait for EPOLLIN on the source, and while a carrier holds bytes the
//     loop waits for EPOLLOUT on the destination instead.
//   - Len is exact: it is the count of bytes spliced in minus those
//     spliced out, which is what the pipe holds.
//   - A pipe holding bytes is never reused: Cache.PutPipe closes it, so
//     one connection's leftover bytes can never reach another's socket.
//
// Pipes are scarce (two fds and up to pipe_size of kernel memory each),
// so a connection holds one only while bytes are in flight. A Pool caps
// how many exist process-wide with an atomic counter; each event loop
// keeps a Cache of a few idle pipes so that taking and returning one costs
// no syscall and no lock. Step errors (EAGAIN, EPIPE, ECONNRESET, ...) are
// bare errnos: they occur on every wake-up and must not allocate.
package splice
