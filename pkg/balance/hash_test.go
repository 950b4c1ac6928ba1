package balance

import (
	"net/netip"
	"testing"
)

// TestKeyFromAddr pins the key of a few addresses: instances of different
// versions must agree on every key for maglev to keep clients in place
// through a rolling upgrade, so any change here is a breaking one.
func TestKeyFromAddr(t *testing.T) {
	tests := []struct {
		addr string
		want uint64
	}{
		{"192.0.2.1", 0x1ad9f79f750af5b2},
		{"::ffff:192.0.2.1", 0x1ad9f79f750af5b2}, // IPv4-mapped: same client
		{"2001:db8::1", 0xe458acaffe2d4d06},
		{"2001:db8::1%eth0", 0xe458acaffe2d4d06}, // zone ignored
		{"0.0.0.0", 0x97746414e19ae563},
	}
	for _, tc := range tests {
		if got := KeyFromAddr(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("KeyFromAddr(%s) = %#x, want %#x", tc.addr, got, tc.want)
		}
	}
	if got := KeyFromAddr(netip.Addr{}); got != 0 {
		t.Errorf("KeyFromAddr(zero Addr) = %#x, want 0", got)
	}
	a := netip.MustParseAddr("2001:db8::1")
	if allocs := testing.AllocsPerRun(100, func() { KeyFromAddr(a) }); allocs != 0 {
		t.Errorf("KeyFromAddr allocates %v times per call", allocs)
	}
}

func TestFNV1a64(t *testing.T) {
	// Test vectors of the FNV reference implementation.
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0xcbf29ce484222325},
		{"a", 0xaf63dc4c8601ec8c},
		{"foobar", 0x85944171f73967e8},
	}
	for _, tc := range tests {
		if got := fnv1a64(tc.in); got != tc.want {
			t.Errorf("fnv1a64(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}
