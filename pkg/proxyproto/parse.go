package proxyproto

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// castagnoli is the CRC32c table the CRC32C TLV is computed with.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parseError is a reason bytes are not a valid header. Its values are
// constants, so that a refusal allocates nothing either.
type parseError string

func (e parseError) Error() string { return "invalid PROXY header: " + string(e) }
func (e parseError) Unwrap() error { return ErrInvalid }

// The reasons Parse gives.
const (
	errNotProxy        = parseError("neither a v1 nor a v2 signature")
	errV1TooLong       = parseError("v1: no CRLF within 107 bytes")
	errV1Byte          = parseError("v1: a byte that is not printable US-ASCII")
	errV1CR            = parseError("v1: CR not followed by LF")
	errV1Protocol      = parseError(`v1: protocol is not "TCP4", "TCP6" or "UNKNOWN"`)
	errV1Fields        = parseError("v1: want protocol, two addresses and two ports, separated by single spaces")
	errV1Addr          = parseError("v1: an address that is not of the protocol's family in its canonical text form")
	errV1Port          = parseError("v1: a port that is not a decimal number from 0 to 65535 without leading zeros")
	errV2Version       = parseError("v2: version is not 2")
	errV2Command       = parseError("v2: command is neither LOCAL nor PROXY")
	errV2Family        = parseError("v2: unknown address family or transport")
	errV2Addresses     = parseError("v2: length too short for the family's addresses")
	errV2TLV           = parseError("v2: a TLV runs past the header's length")
	errV2CRCLength     = parseError("v2: CRC32C TLV is not 4 bytes")
	errV2CRC           = parseError("v2: CRC32C checksum does not match")
	errV2Duplicate     = parseError("v2: CRC32C, AUTHORITY or UNIQUE_ID TLV given twice")
	errV2UniqueIDTooBi = parseError("v2: UNIQUE_ID TLV longer than 128 bytes")
)

// Parse reads the PROXY header at the start of b and returns it with its
// length in bytes; the bytes after it are the stream's (or the
// datagram's) own. When b is a valid beginning of a header but not a whole
// one, the error is ErrShort and n is how many bytes b must hold before
// Parse can say more: the exact length once it is known (a v2 header after
// its 16 fixed bytes), else a lower bound. Any other error wraps
// ErrInvalid: b does not start with a valid header, and more bytes would
// not change that.
//
// Parse reads only b[:n], allocates nothing, and returns a Header whose
// Authority and UniqueID alias b.
func Parse(b []byte) (h Header, n int, err error) {
	if len(b) == 0 {
		return Header{}, 1, ErrShort
	}
	switch b[0] {
	case v1Prefix[0]:
		return parseV1(b)
	case v2Signature[0]:
		return parseV2(b)
	}
	return Header{}, 0, errNotProxy
}

// parseV1 parses a v1 line: "PROXY TCP4 SRC DST SPORT DPORT\r\n" (or
// TCP6), or "PROXY UNKNOWN", anything up to CRLF ignored.
func parseV1(b []byte) (Header, int, error) {
	k := min(len(b), len(v1Prefix))
	if string(b[:k]) != v1Prefix[:k] {
		return Header{}, 0, errNotProxy
	}
	end := -1
	for i := 0; i < len(b) && i < V1MaxLen; i++ {
		c := b[i]
		if c == '\r' {
			switch {
			case i+2 > V1MaxLen:
				return Header{}, 0, errV1TooLong
			case i+1 == len(b):
				return Header{}, i + 2, ErrShort
			case b[i+1] != '\n':
				return Header{}, 0, errV1CR
			}
			end = i
			break
		}
		if c < 0x20 || c > 0x7e {
			return Header{}, 0, errV1Byte
		}
	}
	if end < 0 {
		if len(b) >= V1MaxLen {
			return Header{}, 0, errV1TooLong
		}
		return Header{}, len(b) + 1, ErrShort
	}
	n := end + 2
	line := b[len(v1Prefix):end]
	h := Header{Version: 1, Command: Proxy}
	proto, rest, _ := cut(line)
	switch string(proto) {
	case "UNKNOWN":
		// The receiver must ignore whatever follows, up to the CRLF.
		return h, n, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, 0, errV1Protocol
	}
	var f [4][]byte
	for i := range f {
		var more bool
		f[i], rest, more = cut(rest)
		if len(f[i]) == 0 || more != (i < 3) {
			return Header{}, 0, errV1Fields
		}
	}
	var src, dst netip.Addr
	var ok bool
	if proto[3] == '4' {
		src, ok = parseIPv4(f[0])
		if ok {
			dst, ok = parseIPv4(f[1])
		}
	} else {
		src, ok = parseIPv6(f[0])
		if ok {
			dst, ok = parseIPv6(f[1])
		}
	}
	if !ok {
		return Header{}, 0, errV1Addr
	}
	sport, ok1 := parsePort(f[2])
	dport, ok2 := parsePort(f[3])
	if !ok1 || !ok2 {
		return Header{}, 0, errV1Port
	}
	h.Transport = TransportStream
	h.Source = netip.AddrPortFrom(src, sport)
	h.Destination = netip.AddrPortFrom(dst, dport)
	return h, n, nil
}

// cut splits b at its first space: the field before it, what follows it,
// and whether there was a space.
func cut(b []byte) (field, rest []byte, found bool) {
	for i, c := range b {
		if c == ' ' {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// parsePort reads a decimal port without sign or leading zeros.
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 0xFFFF {
		return 0, false
	}
	return uint16(n), true
}

// parseIPv4 reads dotted-decimal IPv4: four numbers from 0 to 255, without
// leading zeros (which some parsers read as octal).
func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	i := 0
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= len(b) || b[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		start, v := i, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			v = v*10 + int(b[i]-'0')
			i++
			if i-start > 3 {
				return netip.Addr{}, false
			}
		}
		if i == start || v > 255 || (b[start] == '0' && i-start > 1) {
			return netip.Addr{}, false
		}
		a[part] = byte(v)
	}
	if i != len(b) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

// parseIPv6 reads an IPv6 address in RFC 4291 text form: eight groups of
// one to four hex digits, one run of zero groups written "::" at most, and
// the last 32 bits optionally in dotted decimal. A zone is refused: it
// names an interface of the sender, which means nothing here.
func parseIPv6(b []byte) (netip.Addr, bool) {
	var a [16]byte
	ellipsis := -1 // where "::" stands, in bytes of a
	i, j := 0, 0   // position in b, in a
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		i = 2
		if i == len(b) {
			return netip.AddrFrom16(a), true
		}
	}
	for j < 16 {
		// A group, or the dotted IPv4 tail.
		start, v := i, 0
		for i < len(b) && i-start < 5 {
			c := b[i]
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | int(c-'0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | int(c-'a'+10)
			case c >= 'A' && c <= 'F':
				v = v<<4 | int(c-'A'+10)
			default:
				goto groupEnd
			}
			i++
		}
	groupEnd:
		if i == start || i-start > 4 {
			return netip.Addr{}, false
		}
		if i < len(b) && b[i] == '.' {
			// The IPv4 tail: it must end the address and fit.
			if j > 12 {
				return netip.Addr{}, false
			}
			v4, ok := parseIPv4(b[start:])
			if !ok {
				return netip.Addr{}, false
			}
			a4 := v4.As4()
			copy(a[j:], a4[:])
			j += 4
			i = len(b)
			break
		}
		a[j], a[j+1] = byte(v>>8), byte(v)
		j += 2
		if i == len(b) {
			break
		}
		if b[i] != ':' {
			return netip.Addr{}, false
		}
		i++
		if i < len(b) && b[i] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false // a second "::"
			}
			ellipsis = j
			i++
			if i == len(b) {
				break
			}
		} else if i == len(b) {
			return netip.Addr{}, false // a trailing single ':'
		}
	}
	if i != len(b) {
		return netip.Addr{}, false
	}
	if ellipsis >= 0 {
		if j == 16 {
			return netip.Addr{}, false // "::" must stand for at least one group
		}
		n := 16 - j
		copy(a[ellipsis+n:], a[ellipsis:j])
		clear(a[ellipsis : ellipsis+n])
	} else if j != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(a), true
}

// parseV2 parses a binary v2 header.
func parseV2(b []byte) (Header, int, error) {
	k := min(len(b), len(v2Signature))
	if string(b[:k]) != string(v2Signature[:k]) {
		return Header{}, 0, errNotProxy
	}
	if len(b) < V2FixedLen {
		return Header{}, V2FixedLen, ErrShort
	}
	if b[12]>>4 != 2 {
		return Header{}, 0, errV2Version
	}
	cmd := Command(b[12] & 0xF)
	if cmd != Local && cmd != Proxy {
		return Header{}, 0, errV2Command
	}
	total := V2FixedLen + int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) < total {
		return Header{}, total, ErrShort
	}
	h := Header{Version: 2, Command: cmd}
	if cmd == Local {
		// The receiver discards the whole block, family included, and
		// uses the connection's own endpoints.
		return h, total, nil
	}
	family, transport := b[13]>>4, Transport(b[13]&0xF)
	var addrLen int
	switch {
	case family == familyUnspec && transport == TransportUnspec:
	case transport != TransportStream && transport != TransportDgram:
		return Header{}, 0, errV2Family
	case family == familyInet:
		addrLen = addrLenInet
	case family == familyInet6:
		addrLen = addrLenInet6
	case family == familyUnix:
		addrLen = addrLenUnix
	default:
		return Header{}, 0, errV2Family
	}
	h.Transport = transport
	body := b[V2FixedLen:total]
	if len(body) < addrLen {
		return Header{}, 0, errV2Addresses
	}
	switch family {
	case familyInet:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	case familyInet6:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	}
	// UNSPEC and UNIX carry no address a TCP or UDP receiver can use: it
	// falls back to the connection's endpoints, as the specification
	// allows for the families it does not implement.
	if err := parseTLVs(&h, b[:total], V2FixedLen+addrLen); err != nil {
		return Header{}, 0, err
	}
	return h, total, nil
}

// parseTLVs walks the TLVs of hdr, a whole v2 header, from offset off:
// each must fit, the last must end exactly at the header's end, a CRC32C
// TLV must match. Types it does not use are skipped by their length.
func parseTLVs(h *Header, hdr []byte, off int) error {
	crcAt := -1
	for off < len(hdr) {
		if len(hdr)-off < 3 {
			return errV2TLV
		}
		typ := hdr[off]
		l := int(binary.BigEndian.Uint16(hdr[off+1 : off+3]))
		start := off + 3
		if l > len(hdr)-start {
			return errV2TLV
		}
		val := hdr[start : start+l]
		switch typ {
		case TypeCRC32C:
			if l != 4 {
				return errV2CRCLength
			}
			if crcAt >= 0 {
				return errV2Duplicate
			}
			crcAt = start
		case TypeAuthority:
			if h.Authority != nil {
				return errV2Duplicate
			}
			h.Authority = val
		case TypeUniqueID:
			if l > MaxUniqueIDLen {
				return errV2UniqueIDTooBi
			}
			if h.UniqueID != nil {
				return errV2Duplicate
			}
			h.UniqueID = val
		}
		off = start + l
	}
	if crcAt >= 0 {
		if checksum(hdr, crcAt) != binary.BigEndian.Uint32(hdr[crcAt:crcAt+4]) {
			return errV2CRC
		}
		h.CRC32C = true
	}
	return nil
}

// zeroCRC stands for the checksum's own bytes while it is computed. A
// package variable, read only: a local one would escape to the heap
// through crc32.Update.
var zeroCRC [4]byte

// checksum is the CRC32c of hdr with its 4 checksum bytes at crcAt taken
// as zero, as the sender computed it.
func checksum(hdr []byte, crcAt int) uint32 {
	c := crc32.Update(0, castagnoli, hdr[:crcAt])
	c = crc32.Update(c, castagnoli, zeroCRC[:])
	return crc32.Update(c, castagnoli, hdr[crcAt+4:])
}
