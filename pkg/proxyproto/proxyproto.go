package proxyproto

import (
	"errors"
	"net/netip"
)

// Sizes the specification fixes.
const (
	// V1MaxLen is the longest v1 header, CRLF included: "PROXY UNKNOWN"
	// followed by two full IPv6 addresses and ports.
	V1MaxLen = 107
	// V2FixedLen is the v2 signature, version and command, family and
	// length: what must be read before the header's length is known.
	V2FixedLen = 16
	// V2MaxLen is the longest v2 header: the fixed part and the most its
	// 16-bit length can announce.
	V2MaxLen = V2FixedLen + 0xFFFF
	// MaxLen is the longest header of either version.
	MaxLen = V2MaxLen
	// MaxUniqueIDLen bounds the value of a UNIQUE_ID TLV.
	MaxUniqueIDLen = 128
)

// v2Signature opens every v2 header.
var v2Signature = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// v1Prefix opens every v1 header.
const v1Prefix = "PROXY "

// Command is what a v2 header asks of the receiver.
type Command uint8

const (
	// Local: the connection was made by the proxy itself (a health
	// check): the receiver uses the connection's own endpoints.
	Local Command = 0x0
	// Proxy: the connection is relayed for the client the addresses name.
	Proxy Command = 0x1
)

// Transport is the protocol a header says the client used.
type Transport uint8

// The transports.
const (
	TransportUnspec Transport = 0x0
	TransportStream Transport = 0x1
	TransportDgram  Transport = 0x2
)

// v2 address families (the high nibble of byte 13).
const (
	familyUnspec = 0x0
	familyInet   = 0x1
	familyInet6  = 0x2
	familyUnix   = 0x3
)

// Address block sizes by family.
const (
	addrLenInet  = 12
	addrLenInet6 = 36
	addrLenUnix  = 216
)

// TLV types of version 2.
const (
	TypeALPN      = 0x01
	TypeAuthority = 0x02
	TypeCRC32C    = 0x03
	TypeNoop      = 0x04
	TypeUniqueID  = 0x05
	TypeSSL       = 0x20
	TypeNetNS     = 0x30
)

// Header is one parsed PROXY header. Source and Destination are valid only
// when the header carries addresses (see Addressed); otherwise the receiver
// uses the connection's own endpoints, as the specification requires for a
// v2 LOCAL command, a v1 UNKNOWN line and the families a receiver need not
// support (UNSPEC, UNIX).
type Header struct {
	Version   int // 1 or 2
	Command   Command
	Transport Transport
	// Source is the client's address, Destination the address the client
	// connected to, as the header wrote them: an IPv4-mapped IPv6 address
	// in a TCP6 line or an INET6 block stays so (Unmap it to compare with
	// IPv4 prefixes). Never with a zone.
	Source, Destination netip.AddrPort
	// Authority and UniqueID are the values of those v2 TLVs, when
	// present: slices of the parsed bytes, valid as long as they are.
	Authority []byte
	UniqueID  []byte
	// CRC32C reports that the header carried a CRC32c TLV, and so that
	// its checksum matched.
	CRC32C bool
}

// Addressed reports whether h carries the client's addresses.
func (h *Header) Addressed() bool { return h.Source.IsValid() }

// ErrShort is returned by Parse for bytes that are a valid beginning of a
// header but not a whole one.
var ErrShort = errors.New("proxyproto: incomplete header")

// ErrInvalid is wrapped by every error Parse and Read return about bytes
// that are not a valid PROXY header.
var ErrInvalid = errors.New("invalid PROXY header")
