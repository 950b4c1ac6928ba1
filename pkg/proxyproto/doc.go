// Package proxyproto reads and writes the PROXY protocol header, versions 1
// and 2, as HAProxy's doc/proxy-protocol.txt specifies it: the header a
// proxy sends before any byte of a connection (or, over UDP, at the start of
// every datagram) to tell the server who the real client is.
//
// The parser is strict and never guesses. The first byte decides the
// version ('P' for v1, '\r' for v2's signature); anything else is not a
// PROXY header. A v1 line is at most 107 bytes, CRLF included, with exactly
// the fields and single spaces the specification lists; a v2 header is its
// 16 fixed bytes plus exactly the length they announce, whose address block
// must fit the family and whose TLVs must tile the rest. TLVs are skipped
// by their lengths; a CRC32c TLV is checked. Parse never reads past the
// header it reports, nor allocates.
//
// The package holds no state and does no I/O except in Read, which serves
// blocking servers (tests, tools). splicer's event loops peek at the socket
// and call Parse.
package proxyproto
