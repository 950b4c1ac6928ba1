package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// parseAddrPort reads an IP:port, IPv6 in brackets. Hostnames are refused:
// resolving them at load time would pin whatever DNS said then, silently.
// The errors say what to write instead.
func parseAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPort{}, fmt.Errorf(`%q has no port; write IP:port, with IPv6 in brackets, such as "[::1]:7000"`, s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf(`%q is not IP:port, such as "127.0.0.1:7000" or "[::1]:7000"`, s)
	}
	if host == "" {
		return netip.AddrPort{}, fmt.Errorf(`%q has no IP address; use 0.0.0.0 or [::] for all addresses`, s)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %q is not an IP address; IP literals are required, hostnames are not resolved", s, host)
	}
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return netip.AddrPort{}, fmt.Errorf("%q: port %q is not a number", s, port)
	}
	if n, err := strconv.ParseUint(port, 10, 64); err != nil || n > 65535 {
		return netip.AddrPort{}, fmt.Errorf("%q: port %s is out of range 0-65535", s, port)
	}
	// ParseAddrPort refused it for another reason, such as an IPv4 address
	// in brackets.
	return netip.AddrPort{}, fmt.Errorf(`%q is not IP:port, such as "127.0.0.1:7000" or "[::1]:7000"`, s)
}

// parsePrefix reads a CIDR prefix or a bare IP, which means just that
// address (/32 or /128). A prefix with host bits set is refused: "10.0.0.1/8"
// is more likely a typo than a wish for all of 10.0.0.0/8.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %q?", s, p.Masked().String())
		}
		return p, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	if ip.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has a zone; client addresses are matched without zones", s)
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}
