package proxyproto

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Read reads one PROXY header from r, for a server that reads with
// blocking calls, and leaves r at the first byte after it. It takes no
// byte past the header from r, however slowly the header comes; the
// Header's Authority and UniqueID are copies it owns. An error that is
// not about the header's bytes is the reader's (io.ErrUnexpectedEOF when
// the stream ended inside the header).
func Read(r *bufio.Reader) (Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		return Header{}, err
	}
	var buf []byte
	switch first[0] {
	case v1Prefix[0]:
		// Byte by byte from the bufio buffer up to the LF: a v1 header
		// has no length field, and whatever follows it is not ours.
		for len(buf) < V1MaxLen {
			c, err := r.ReadByte()
			if err != nil {
				return Header{}, unexpected(err)
			}
			buf = append(buf, c)
			if c == '\n' {
				break
			}
			if _, _, err := Parse(buf); err != nil && err != ErrShort {
				return Header{}, err
			}
		}
	case v2Signature[0]:
		buf = make([]byte, V2FixedLen, V2FixedLen+64)
		if _, err := io.ReadFull(r, buf); err != nil {
			return Header{}, unexpected(err)
		}
		if _, _, err := Parse(buf); err != nil && err != ErrShort {
			return Header{}, err
		}
		n := int(binary.BigEndian.Uint16(buf[14:16]))
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(r, buf[V2FixedLen:]); err != nil {
			return Header{}, unexpected(err)
		}
	default:
		return Header{}, errNotProxy
	}
	// buf holds exactly one header, or what Parse refused already: a v1
	// line to its LF or of V1MaxLen bytes, or a v2 header to the length
	// its fixed part gives. So Parse takes all of it and never asks for
	// more (ErrShort).
	h, _, err := Parse(buf)
	return h, err
}

// unexpected turns an EOF inside a header into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
