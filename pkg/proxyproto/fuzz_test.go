package proxyproto

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes. It must not panic, and:
//   - an accepted header has a length within b and within the
//     specification's bound, and Parse's answer depends on those bytes
//     alone (no over-read): whatever follows changes nothing;
//   - a short answer asks for more than b holds and at most the bound,
//     and the same bytes with junk after them are never accepted as a
//     header of another length;
//   - an accepted header with addresses encodes back to a header with the
//     same addresses;
//   - the address parsers agree with net/netip on every input.
func FuzzParse(f *testing.F) {
	seeds := [][]byte{
		[]byte("PROXY TCP4 192.0.2.10 198.51.100.1 40001 443\r\n"),
		[]byte("PROXY TCP6 2001:db8::10 ::ffff:1.2.3.4 1 65535\r\nGET /"),
		[]byte("PROXY UNKNOWN\r\n"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1"),
		AppendV2(nil, &Header{Command: Proxy, Source: v4src, Destination: v4dst, Authority: []byte("a"), UniqueID: []byte("1")}, true),
		AppendV2(nil, &Header{Command: Proxy, Transport: TransportDgram, Source: v6src, Destination: v6dst}, false),
		AppendV2(nil, &Header{Command: Local}, false),
		v2(0x21, 0x31, make([]byte, 216)),
		v2(0x21, 0x11, inet4Block(v4src, v4dst), []byte{TypeNoop, 0, 5, 1, 2}),
		v2(0x21, 0x11, inet4Block(v4src, v4dst))[:20],
		[]byte("::ffff:1.2.3.4"),
		[]byte("1:2:3:4:5:6:7::"),
		[]byte("255.255.255.255"),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		switch {
		case err == nil:
			if n < 1 || n > len(b) || n > MaxLen {
				t.Fatalf("accepted a header of %d bytes from %d", n, len(b))
			}
			if h.Version == 1 && n > V1MaxLen {
				t.Fatalf("v1 header of %d bytes", n)
			}
			own := bytes.Clone(b[:n])
			h2, n2, err2 := Parse(append(own, 0xFF, '\r', '\n', 'P'))
			if err2 != nil || n2 != n || !equalHeaders(h, h2) {
				t.Fatalf("the bytes after the header changed the answer: %+v %d %v", h2, n2, err2)
			}
			if h.Addressed() {
				checkReencode(t, h)
			}
		case err == ErrShort:
			if n <= len(b) || n > MaxLen {
				t.Fatalf("short answer asks for %d bytes with %d held", n, len(b))
			}
			// Padding up to the bytes asked for may complete it, but
			// never into a header longer than what was asked... for v2;
			// for v1 the answer is a lower bound only.
			padded := append(bytes.Clone(b), make([]byte, n-len(b))...)
			if _, m, err := Parse(padded); err == nil && b[0] != 'P' && m != n {
				t.Fatalf("v2 asked for %d bytes, then parsed %d", n, m)
			}
		default:
			if n != 0 {
				t.Fatalf("refusal with n = %d", n)
			}
		}
		if len(b) <= 64 {
			if got, ok := parseIPv6(b); ok != validIPv6(b) || ok && got != netip.MustParseAddr(string(b)) {
				t.Fatalf("parseIPv6(%q) = %v, %v; net/netip disagrees", b, got, ok)
			}
			want, err := netip.ParseAddr(string(b))
			wantOK := err == nil && want.Is4()
			if got, ok := parseIPv4(b); ok != wantOK || ok && got != want {
				t.Fatalf("parseIPv4(%q) = %v, %v; net/netip says %v, %v", b, got, ok, want, err)
			}
		}
	})
}

// validIPv6 is net/netip's verdict on b as an IPv6 address without zone.
func validIPv6(b []byte) bool {
	a, err := netip.ParseAddr(string(b))
	return err == nil && a.Is6() && a.Zone() == ""
}

// checkReencode writes h's addresses again in its version and parses them.
func checkReencode(t *testing.T, h Header) {
	t.Helper()
	var out []byte
	if h.Version == 1 {
		out = AppendV1(nil, h.Source, h.Destination)
	} else {
		out = AppendV2(nil, &h, h.CRC32C)
	}
	r, n, err := Parse(out)
	if err != nil || n != len(out) || unmap(r.Source) != unmap(h.Source) || unmap(r.Destination) != unmap(h.Destination) {
		t.Fatalf("re-encoded %+v as %q: parsed %+v, %d, %v", h, out, r, n, err)
	}
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }
