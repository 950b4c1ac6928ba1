//go:build linux

package sock

import (
	"net"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ToSockaddr converts ap to a socket address: *unix.SockaddrInet4 for IPv4
// and IPv4-mapped IPv6 addresses, *unix.SockaddrInet6 otherwise. A zone
// is taken as an interface index when numeric, else as an interface name
// (an unknown name leaves the zone unset). It returns nil for an invalid
// AddrPort.
func ToSockaddr(ap netip.AddrPort) unix.Sockaddr {
	addr := ap.Addr().Unmap()
	switch {
	case addr.Is4():
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.As4()}
	case addr.Is6():
		return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16(), ZoneId: zoneIndex(addr.Zone())}
	default:
		return nil
	}
}

func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// FromSockaddr converts an IPv4 or IPv6 socket address to an AddrPort,
// unmapping IPv4-mapped IPv6 addresses. A scope id becomes a numeric zone,
// which avoids an interface lookup per accepted connection. Any other
// socket address type yields the invalid zero AddrPort.
func FromSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		addr := netip.AddrFrom16(sa.Addr)
		if addr.Is4In6() {
			return netip.AddrPortFrom(addr.Unmap(), uint16(sa.Port))
		}
		if sa.ZoneId != 0 {
			addr = addr.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
		}
		return netip.AddrPortFrom(addr, uint16(sa.Port))
	default:
		return netip.AddrPort{}
	}
}

// family returns the socket family for ap, consistent with ToSockaddr.
func family(ap netip.AddrPort) int {
	if ap.Addr().Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// LocalAddr returns the address fd is bound to (getsockname).
func LocalAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getsockname", err)
	}
	return FromSockaddr(sa), nil
}

// PeerAddr returns the address fd is connected to (getpeername); ENOTCONN
// while a non-blocking connect is still in progress or after it failed.
func PeerAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getpeername", err)
	}
	return FromSockaddr(sa), nil
}

// Canonical returns ap in the form FromSockaddr and received datagrams'
// source addresses take: an IPv4-mapped address as plain IPv4, and a zone
// only on the link-local addresses that need one, as its numeric interface
// index (the kernel reports no scope for other addresses; an unknown
// interface name drops the zone, as ToSockaddr does). Compare a configured
// address with received ones in this form.
func Canonical(ap netip.AddrPort) netip.AddrPort {
	addr := ap.Addr().Unmap()
	if zone := addr.Zone(); zone != "" {
		idx := uint32(0)
		if addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() {
			idx = zoneIndex(zone)
		}
		if idx != 0 {
			addr = addr.WithZone(strconv.FormatUint(uint64(idx), 10))
		} else {
			addr = addr.WithZone("")
		}
	}
	return netip.AddrPortFrom(addr, ap.Port())
}
