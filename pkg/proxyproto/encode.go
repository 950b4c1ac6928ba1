package proxyproto

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// MaxEncodedLen bounds what AppendV1 writes, and what AppendV2 writes with
// addresses, a UNIQUE_ID, a CRC32C and an AUTHORITY of at most
// MaxAuthorityLen bytes: room for a header on the stack.
const MaxEncodedLen = V2FixedLen + addrLenInet6 + 3 + MaxUniqueIDLen + 3 + 4 + 3 + MaxAuthorityLen

// MaxAuthorityLen is the longest AUTHORITY value AppendV2 writes: a host
// name's limit.
const MaxAuthorityLen = 255

// family returns the addresses of a header in the form they are written:
// both IPv4 (unmapped) when both are IPv4 or IPv4-mapped, else both IPv6
// (an IPv4 address mapped), zones dropped. ok is false unless both are
// valid: the header then says the addresses are unknown.
func family(src, dst netip.AddrPort) (s, d netip.AddrPort, v4, ok bool) {
	sa, da := src.Addr().WithZone(""), dst.Addr().WithZone("")
	if !sa.IsValid() || !da.IsValid() {
		return s, d, false, false
	}
	if sa.Unmap().Is4() && da.Unmap().Is4() {
		return netip.AddrPortFrom(sa.Unmap(), src.Port()), netip.AddrPortFrom(da.Unmap(), dst.Port()), true, true
	}
	sa, da = netip.AddrFrom16(sa.As16()), netip.AddrFrom16(da.As16())
	return netip.AddrPortFrom(sa, src.Port()), netip.AddrPortFrom(da, dst.Port()), false, true
}

// AppendV1 appends a v1 header for a TCP client at src that connected to
// dst, and returns the extended slice: TCP4 when both are IPv4 (or
// IPv4-mapped), else TCP6, with an IPv4 address written mapped. When
// either is not a valid address it writes "PROXY UNKNOWN\r\n", as the
// specification asks, and the receiver uses the connection's endpoints.
func AppendV1(b []byte, src, dst netip.AddrPort) []byte {
	s, d, v4, ok := family(src, dst)
	if !ok {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	if v4 {
		b = append(b, "PROXY TCP4 "...)
	} else {
		b = append(b, "PROXY TCP6 "...)
	}
	b = s.Addr().AppendTo(b)
	b = append(b, ' ')
	b = d.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(s.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(d.Port()), 10)
	return append(b, '\r', '\n')
}

// AppendV2 appends a v2 header describing h and returns the extended
// slice: h.Command (a LOCAL header carries no address), h.Transport
// (TransportUnspec means a stream), the addresses, and the AUTHORITY and
// UNIQUE_ID TLVs when they are not empty; withCRC adds a CRC32C TLV. The
// family follows the addresses as in AppendV1; when either is not valid
// the header is UNSPEC, which tells the receiver to use the connection's
// endpoints.
// UniqueID is cut to MaxUniqueIDLen bytes and Authority to
// MaxAuthorityLen.
func AppendV2(b []byte, h *Header, withCRC bool) []byte {
	start := len(b)
	b = append(b, v2Signature[:]...)
	b = append(b, 0x20|byte(h.Command&0xF), 0, 0, 0)
	if h.Command == Proxy {
		if s, d, v4, ok := family(h.Source, h.Destination); ok {
			transport := h.Transport
			if transport != TransportDgram {
				transport = TransportStream
			}
			if v4 {
				b[start+13] = familyInet<<4 | byte(transport)
				sa, da := s.Addr().As4(), d.Addr().As4()
				b = append(b, sa[:]...)
				b = append(b, da[:]...)
			} else {
				b[start+13] = familyInet6<<4 | byte(transport)
				sa, da := s.Addr().As16(), d.Addr().As16()
				b = append(b, sa[:]...)
				b = append(b, da[:]...)
			}
			b = binary.BigEndian.AppendUint16(b, s.Port())
			b = binary.BigEndian.AppendUint16(b, d.Port())
		}
	}
	if len(h.Authority) > 0 {
		b = appendTLV(b, TypeAuthority, h.Authority[:min(len(h.Authority), MaxAuthorityLen)])
	}
	if len(h.UniqueID) > 0 {
		b = appendTLV(b, TypeUniqueID, h.UniqueID[:min(len(h.UniqueID), MaxUniqueIDLen)])
	}
	crcAt := -1
	if withCRC {
		crcAt = len(b) - start + 3
		b = appendTLV(b, TypeCRC32C, zeroCRC[:])
	}
	binary.BigEndian.PutUint16(b[start+14:], uint16(len(b)-start-V2FixedLen))
	if crcAt >= 0 {
		hdr := b[start:]
		binary.BigEndian.PutUint32(hdr[crcAt:], checksum(hdr, crcAt))
	}
	return b
}

func appendTLV(b []byte, typ byte, val []byte) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
	return append(b, val...)
}
