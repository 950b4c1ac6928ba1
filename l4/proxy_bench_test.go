package l4

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/proxyproto"
)

// benchConnections runs b.N short connections to addr: connect, write
// first (a header, then 64 bytes), read the 64-byte echo, close.
func benchConnections(b *testing.B, addr string, first []byte) {
	msg := append(first, make([]byte, 64)...)
	buf := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkConnectionSendProxyV2 is BenchmarkConnection with a v2 header
// (and its TLVs) written to the backend, which strips it.
func BenchmarkConnectionSendProxyV2(b *testing.B) {
	be := startBackend(b, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := proxyproto.Read(br); err == nil {
			io.Copy(c, br)
		}
	})
	s := startServer(b, testConfig(b, []netip.AddrPort{be.addr}, func(f *config.FrontendBuilder) {
		f.SendProxy(config.ProxyV2).SendProxyTLVs(config.ProxyTLVUniqueID, config.ProxyTLVCRC32C)
	}))
	benchConnections(b, s.Addrs("fe")[0].String(), nil)
}

// BenchmarkConnectionAcceptProxy is BenchmarkConnection with every client
// sending a v2 header first, which splicer reads and strips.
func BenchmarkConnectionAcceptProxy(b *testing.B) {
	be := startBackend(b, echo)
	s := startServer(b, testConfig(b, []netip.AddrPort{be.addr}, func(f *config.FrontendBuilder) { f.AcceptProxy("127.0.0.0/8") }))
	hdr := v2Header(netip.MustParseAddrPort("203.0.113.5:40000"), netip.MustParseAddrPort("192.0.2.1:5432"))
	benchConnections(b, s.Addrs("fe")[0].String(), hdr)
}
