// Package sock creates and configures raw non-blocking sockets for the
// event loops.
//
// Every socket is created with SOCK_NONBLOCK|SOCK_CLOEXEC in the socket or
// accept4 call itself, never set afterwards and never obtained from
// net.Conn.File (a blocking dup whose finalizer may close a reused fd
// number). The caller owns every fd returned and closes it with unix.Close;
// on error no fd is left open.
//
// Error style: setup calls (Listen, Connect, the option setters) wrap the
// errno with os.NewSyscallError, which errors.Is still sees through. Accept
// returns the bare errno because the loop calls it until EAGAIN on every
// wake-up and an allocation per call would be waste; unix.Errno values
// below 256 convert to error without allocating.
//
// Addresses are netip.AddrPort. IPv4-mapped IPv6 addresses are unmapped in
// both directions, so an IPv4 peer is always reported as an IPv4 address.
package sock
