package l4

import "net/netip"

// acl is a frontend's access list, checked at accept before any other work.
type acl struct {
	allow []netip.Prefix // when not empty, a client must match one
	deny  []netip.Prefix // a client matching one is refused, allowed or not
}

// admits reports whether a client may connect. Lists are short (a few
// networks), so a linear scan beats any index; an empty list costs nothing.
func (a *acl) admits(ip netip.Addr) bool {
	for _, p := range a.deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(a.allow) == 0 {
		return true
	}
	for _, p := range a.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
