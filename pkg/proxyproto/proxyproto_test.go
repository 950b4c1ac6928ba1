package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
)

var (
	v4src = netip.MustParseAddrPort("192.0.2.10:40001")
	v4dst = netip.MustParseAddrPort("198.51.100.1:443")
	v6src = netip.MustParseAddrPort("[2001:db8::10]:40001")
	v6dst = netip.MustParseAddrPort("[2001:db8:ffff::1]:443")
)

// v2 builds a v2 header by hand: version/command byte, family byte, then
// the body, with the length filled in.
func v2(verCmd, fam byte, body ...[]byte) []byte {
	b := append([]byte{}, v2Signature[:]...)
	b = append(b, verCmd, fam, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[14:], uint16(len(b)-16))
	return b
}

func inet4Block(src, dst netip.AddrPort) []byte {
	s, d := src.Addr().As4(), dst.Addr().As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

func tlv(typ byte, val string) []byte {
	return appendTLV(nil, typ, []byte(val))
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Header
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.10 198.51.100.1 40001 443\r\n",
			Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: v4src, Destination: v4dst}},
		{"v1 tcp6", "PROXY TCP6 2001:db8::10 2001:db8:ffff::1 40001 443\r\n",
			Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: v6src, Destination: v6dst}},
		{"v1 tcp6 mapped stays mapped", "PROXY TCP6 ::ffff:192.0.2.10 2001:db8:ffff::1 40001 443\r\n",
			Header{Version: 1, Command: Proxy, Transport: TransportStream,
				Source: netip.MustParseAddrPort("[::ffff:192.0.2.10]:40001"), Destination: v6dst}},
		{"v1 ports 0 and 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n",
			Header{Version: 1, Command: Proxy, Transport: TransportStream,
				Source: netip.MustParseAddrPort("1.2.3.4:0"), Destination: netip.MustParseAddrPort("5.6.7.8:65535")}},
		{"v1 unknown", "PROXY UNKNOWN\r\n", Header{Version: 1, Command: Proxy}},
		{"v1 unknown with junk", "PROXY UNKNOWN ffff:f...f:ffff 123 whatever\r\n", Header{Version: 1, Command: Proxy}},
		{"v1 longest", "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			Header{Version: 1, Command: Proxy}},
		{"v2 tcp4", string(v2(0x21, 0x11, inet4Block(v4src, v4dst))),
			Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: v4src, Destination: v4dst}},
		{"v2 udp4", string(v2(0x21, 0x12, inet4Block(v4src, v4dst))),
			Header{Version: 2, Command: Proxy, Transport: TransportDgram, Source: v4src, Destination: v4dst}},
		{"v2 local ignores the block", string(v2(0x20, 0x77, []byte("anything at all"))),
			Header{Version: 2, Command: Local}},
		{"v2 unspec", string(v2(0x21, 0x00)), Header{Version: 2, Command: Proxy}},
		{"v2 unix falls back", string(v2(0x21, 0x31, make([]byte, 216))), Header{Version: 2, Command: Proxy, Transport: TransportStream}},
		{"v2 tlvs skipped and read", string(v2(0x21, 0x11, inet4Block(v4src, v4dst),
			tlv(TypeNoop, "xx"), tlv(TypeAuthority, "db.example"), tlv(0xE0, ""), tlv(TypeUniqueID, "42"), tlv(TypeSSL, "\x01\x00\x00\x00\x00"))),
			Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: v4src, Destination: v4dst,
				Authority: []byte("db.example"), UniqueID: []byte("42")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			// The stream's own bytes follow the header: never taken.
			h, n, err := Parse(append(in[:len(in):len(in)], "GET / HTTP/1.1\r\n"...))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n != len(in) {
				t.Errorf("n = %d, want %d", n, len(in))
			}
			if !equalHeaders(h, tc.want) {
				t.Errorf("got %+v\nwant %+v", h, tc.want)
			}
			// Every strict prefix is short, and asks for no more than
			// the whole header.
			for k := 0; k < len(in); k++ {
				_, need, err := Parse(in[:k])
				if err != ErrShort {
					t.Fatalf("prefix of %d bytes: %v, want ErrShort", k, err)
				}
				if need <= k || need > len(in) {
					t.Fatalf("prefix of %d bytes: need %d, want in (%d, %d]", k, need, k, len(in))
				}
			}
		})
	}
}

func equalHeaders(a, b Header) bool {
	return a.Version == b.Version && a.Command == b.Command && a.Transport == b.Transport &&
		a.Source == b.Source && a.Destination == b.Destination && a.CRC32C == b.CRC32C &&
		bytes.Equal(a.Authority, b.Authority) && bytes.Equal(a.UniqueID, b.UniqueID)
}

func TestParseInvalid(t *testing.T) {
	long := "PROXY UNKNOWN " + strings.Repeat("x", 92) + "\r\n" // 108 bytes
	crcBad := AppendV2(nil, &Header{Command: Proxy, Source: v4src, Destination: v4dst}, true)
	crcBad[len(crcBad)-1] ^= 1
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"not a header", []byte("GET / HTTP/1.1\r\n"), errNotProxy},
		{"v1 lower case", []byte("proxy TCP4"), errNotProxy},
		{"v1 prefix wrong", []byte("PROXX"), errNotProxy},
		{"v1 over 107 bytes", []byte(long), errV1TooLong},
		{"v1 107 bytes without CRLF", []byte(strings.Repeat("PROXY ", 18)[:107]), errV1TooLong},
		{"v1 bare LF", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), errV1Byte},
		{"v1 CR alone", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), errV1CR},
		{"v1 NUL", []byte("PROXY TCP4\x00"), errV1Byte},
		{"v1 unknown protocol", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), errV1Protocol},
		{"v1 empty protocol", []byte("PROXY \r\n"), errV1Protocol},
		{"v1 double space", []byte("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), errV1Fields},
		{"v1 trailing space", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), errV1Fields},
		{"v1 too few fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), errV1Fields},
		{"v1 too many fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), errV1Fields},
		{"v1 tcp4 with v6", []byte("PROXY TCP4 ::1 ::1 1 2\r\n"), errV1Addr},
		{"v1 tcp6 with v4", []byte("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), errV1Addr},
		{"v1 leading zero octet", []byte("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), errV1Addr},
		{"v1 octet over 255", []byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), errV1Addr},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n"), errV1Addr},
		{"v1 hostname", []byte("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), errV1Addr},
		{"v1 port over 65535", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), errV1Port},
		{"v1 port leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), errV1Port},
		{"v1 port signed", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n"), errV1Port},
		{"v2 signature wrong", append(append([]byte{}, v2Signature[:11]...), 'X'), errNotProxy},
		{"v2 version 1", v2(0x11, 0x11, inet4Block(v4src, v4dst)), errV2Version},
		{"v2 version 3", v2(0x31, 0x11, inet4Block(v4src, v4dst)), errV2Version},
		{"v2 command 2", v2(0x22, 0x11, inet4Block(v4src, v4dst)), errV2Command},
		{"v2 family 4", v2(0x21, 0x41, inet4Block(v4src, v4dst)), errV2Family},
		{"v2 transport 3", v2(0x21, 0x13, inet4Block(v4src, v4dst)), errV2Family},
		{"v2 unspec transport", v2(0x21, 0x01), errV2Family},
		{"v2 inet without transport", v2(0x21, 0x10, inet4Block(v4src, v4dst)), errV2Family},
		{"v2 inet truncated", v2(0x21, 0x11, inet4Block(v4src, v4dst)[:11]), errV2Addresses},
		{"v2 inet6 with inet length", v2(0x21, 0x21, inet4Block(v4src, v4dst)), errV2Addresses},
		{"v2 unix truncated", v2(0x21, 0x31, make([]byte, 215)), errV2Addresses},
		{"v2 tlv header cut", v2(0x21, 0x11, inet4Block(v4src, v4dst), []byte{TypeNoop, 0}), errV2TLV},
		{"v2 tlv overruns", v2(0x21, 0x11, inet4Block(v4src, v4dst), []byte{TypeNoop, 0, 5, 1, 2}), errV2TLV},
		{"v2 crc short", v2(0x21, 0x11, inet4Block(v4src, v4dst), tlv(TypeCRC32C, "abc")), errV2CRCLength},
		{"v2 crc wrong", crcBad, errV2CRC},
		{"v2 two authorities", v2(0x21, 0x11, inet4Block(v4src, v4dst), tlv(TypeAuthority, "a"), tlv(TypeAuthority, "b")), errV2Duplicate},
		{"v2 two checksums", v2(0x21, 0x11, inet4Block(v4src, v4dst), tlv(TypeCRC32C, "abcd"), tlv(TypeCRC32C, "abcd")), errV2Duplicate},
		{"v2 two unique ids", v2(0x21, 0x11, inet4Block(v4src, v4dst), tlv(TypeUniqueID, "a"), tlv(TypeUniqueID, "b")), errV2Duplicate},
		{"v2 unique id too long", v2(0x21, 0x11, inet4Block(v4src, v4dst), tlv(TypeUniqueID, strings.Repeat("x", 129))), errV2UniqueIDTooBi},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse(tc.in)
			if err != tc.want {
				t.Fatalf("Parse(%q): %v, want %v", tc.in, err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
		})
	}
}

// The bytes an invalid header's first bytes already condemn are refused at
// once, not after waiting for more.
func TestParseRefusesEarly(t *testing.T) {
	for _, in := range []string{"G", "PROXZ", "\r\n\r\n\x00\r\nX", "PROXY TCP4 1.2.3.4\x01", "\x16\x03\x01"} {
		if _, _, err := Parse([]byte(in)); err == ErrShort || err == nil {
			t.Errorf("Parse(%q) = %v, want a refusal", in, err)
		}
	}
}

func TestV2ShortNeedsExactLength(t *testing.T) {
	h := v2(0x21, 0x11, inet4Block(v4src, v4dst), tlv(TypeNoop, strings.Repeat("x", 300)))
	if _, need, err := Parse(h[:16]); err != ErrShort || need != len(h) {
		t.Fatalf("Parse(16 bytes) = %d, %v; want %d, ErrShort", need, err, len(h))
	}
	if _, need, err := Parse(h[:5]); err != ErrShort || need != 16 {
		t.Fatalf("Parse(5 bytes) = %d, %v; want 16, ErrShort", need, err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, pair := range [][2]netip.AddrPort{{v4src, v4dst}, {v6src, v6dst}} {
		src, dst := pair[0], pair[1]
		b := AppendV1(nil, src, dst)
		h, n, err := Parse(b)
		if err != nil || n != len(b) || h.Source != src || h.Destination != dst || h.Version != 1 {
			t.Errorf("v1 %v -> %v: %q parsed as %+v, %d, %v", src, dst, b, h, n, err)
		}
		for _, crc := range []bool{false, true} {
			in := Header{Command: Proxy, Source: src, Destination: dst, Authority: []byte("pg"), UniqueID: []byte("1234")}
			b := AppendV2(nil, &in, crc)
			h, n, err := Parse(b)
			want := Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: src, Destination: dst,
				Authority: []byte("pg"), UniqueID: []byte("1234"), CRC32C: crc}
			if err != nil || n != len(b) || !equalHeaders(h, want) {
				t.Errorf("v2 crc=%v %v -> %v: parsed as %+v, %d, %v", crc, src, dst, h, n, err)
			}
		}
	}
	// Mixed families go as IPv6, the IPv4 address mapped; mapped pairs
	// go as IPv4.
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.10]:40001")
	if b := AppendV1(nil, v4src, v6dst); string(b) != "PROXY TCP6 ::ffff:192.0.2.10 2001:db8:ffff::1 40001 443\r\n" {
		t.Errorf("v1 mixed families: %q", b)
	}
	b := AppendV2(nil, &Header{Command: Proxy, Source: v4src, Destination: v6dst}, false)
	if h, _, err := Parse(b); err != nil || h.Source != mapped || h.Destination != v6dst || b[13] != 0x21 {
		t.Errorf("v2 mixed families: %x parsed as %+v, %v", b, h, err)
	}
	if b := AppendV1(nil, mapped, netip.MustParseAddrPort("[::ffff:198.51.100.1]:443")); string(b) != "PROXY TCP4 192.0.2.10 198.51.100.1 40001 443\r\n" {
		t.Errorf("v1 mapped pair: %q", b)
	}
	// No address: unknown, so the receiver uses the connection's own.
	if b := AppendV1(nil, netip.AddrPort{}, v4dst); string(b) != "PROXY UNKNOWN\r\n" {
		t.Errorf("v1 without address: %q", b)
	}
	b = AppendV2(nil, &Header{Command: Proxy, Destination: v4dst}, false)
	if h, _, err := Parse(b); err != nil || h.Addressed() || b[13] != 0 {
		t.Errorf("v2 without address: %x parsed as %+v, %v", b, h, err)
	}
	b = AppendV2(nil, &Header{Command: Local}, false)
	if want := v2(0x20, 0x00); !bytes.Equal(b, want) {
		t.Errorf("LOCAL: %x, want %x", b, want)
	}
	// A datagram's header says so.
	b = AppendV2(nil, &Header{Command: Proxy, Transport: TransportDgram, Source: v6src, Destination: v6dst}, false)
	if h, _, err := Parse(b); err != nil || h.Transport != TransportDgram || b[13] != 0x22 {
		t.Errorf("v2 dgram: %x parsed as %+v, %v", b, h, err)
	}
}

// The checksum is CRC32c (RFC 3720's check value), over the header with
// its own 4 bytes as zeros.
func TestChecksum(t *testing.T) {
	if c := crc32.Checksum([]byte("123456789"), castagnoli); c != 0xE3069283 {
		t.Fatalf("CRC32c(123456789) = %#x, want 0xe3069283", c)
	}
	hdr := []byte("abcdWXYZefgh")
	want := crc32.Checksum([]byte("abcd\x00\x00\x00\x00efgh"), castagnoli)
	if got := checksum(hdr, 4); got != want {
		t.Fatalf("checksum = %#x, want %#x", got, want)
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	inputs := [][]byte{
		[]byte("PROXY TCP6 2001:db8::10 2001:db8:ffff::1 40001 443\r\n"),
		AppendV2(nil, &Header{Command: Proxy, Source: v6src, Destination: v6dst, UniqueID: []byte("7")}, true),
		[]byte("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"),
		[]byte("PROXY TCP4 1.2.3"),
	}
	for _, in := range inputs {
		if n := testing.AllocsPerRun(100, func() { Parse(in) }); n != 0 {
			t.Errorf("Parse(%q) allocates %v times", in, n)
		}
	}
	var buf [MaxEncodedLen]byte
	h := Header{Command: Proxy, Source: v6src, Destination: v6dst, UniqueID: []byte("7"), Authority: []byte("fe")}
	if n := testing.AllocsPerRun(100, func() { AppendV2(buf[:0], &h, true); AppendV1(buf[:0], v6src, v6dst) }); n != 0 {
		t.Errorf("Append allocates %v times", n)
	}
}

func TestRead(t *testing.T) {
	v2h := AppendV2(nil, &Header{Command: Proxy, Source: v6src, Destination: v6dst, Authority: []byte("x")}, true)
	for _, in := range [][]byte{[]byte("PROXY TCP4 192.0.2.10 198.51.100.1 40001 443\r\n"), v2h} {
		// One byte per read: Read must not take a byte past the header.
		r := bufio.NewReader(iotest.OneByteReader(bytes.NewReader(append(in[:len(in):len(in)], "rest"...))))
		h, err := Read(r)
		if err != nil || !h.Addressed() {
			t.Fatalf("Read(%q): %+v, %v", in, h, err)
		}
		rest, _ := io.ReadAll(r)
		if string(rest) != "rest" {
			t.Errorf("after the header: %q, want %q", rest, "rest")
		}
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"PROXY TCP4 1.2.3.4", io.ErrUnexpectedEOF},
		{string(v2h[:20]), io.ErrUnexpectedEOF},
		{"HELLO", ErrInvalid},
		{"PROXY " + strings.Repeat("A", 200), ErrInvalid},
		{"", io.EOF},
		{string(v2h[:10]), io.ErrUnexpectedEOF},
		{string(v2(0x11, 0x11, inet4Block(v4src, v4dst))), errV2Version},
		{string(v2(0x21, 0x11, inet4Block(v4src, v4dst), tlv(TypeAuthority, "a"), tlv(TypeAuthority, "b"))), errV2Duplicate},
		// A CR as the 107th byte: the LF that would end the header is one
		// byte past the longest v1 header.
		{"PROXY " + strings.Repeat("A", 100) + "\r\n", errV1TooLong},
	} {
		_, err := Read(bufio.NewReader(strings.NewReader(tc.in)))
		if !errors.Is(err, tc.want) {
			t.Errorf("Read(%.20q): %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestParseAddresses(t *testing.T) {
	good6 := []string{"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
		"2001:DB8::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "fe80::1:2"}
	bad6 := []string{"", ":", ":::", "1:::2", "1::2::3", ":1", "1:", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::",
		"::1:2:3:4:5:6:7:8", "12345::", "g::", "1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "fe80::1%1", "1 ::"}
	for _, s := range good6 {
		got, ok := parseIPv6([]byte(s))
		if want := netip.MustParseAddr(s); !ok || got != want {
			t.Errorf("parseIPv6(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range bad6 {
		if got, ok := parseIPv6([]byte(s)); ok {
			t.Errorf("parseIPv6(%q) = %v, want a refusal", s, got)
		}
	}
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "10.0.0.1"} {
		if got, ok := parseIPv4([]byte(s)); !ok || got != netip.MustParseAddr(s) {
			t.Errorf("parseIPv4(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "1.2.3", "1.2.3.4.5", "1.2.3.04", "1..2.3", "1.2.3.4 ", "256.1.1.1", "1.2.3.1000"} {
		if got, ok := parseIPv4([]byte(s)); ok {
			t.Errorf("parseIPv4(%q) = %v, want a refusal", s, got)
		}
	}
}
