package proxyproto

import "testing"

func BenchmarkParseV1(b *testing.B) {
	in := []byte("PROXY TCP6 2001:db8::10 2001:db8:ffff::1 40001 443\r\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseV2CRC(b *testing.B) {
	in := AppendV2(nil, &Header{Command: Proxy, Source: v6src, Destination: v6dst, UniqueID: []byte("123456")}, true)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendV2(b *testing.B) {
	var buf [MaxEncodedLen]byte
	h := Header{Command: Proxy, Source: v4src, Destination: v4dst, UniqueID: []byte("123456"), Authority: []byte("pg")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		AppendV2(buf[:0], &h, true)
	}
}

func BenchmarkAppendV1(b *testing.B) {
	var buf [MaxEncodedLen]byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		AppendV1(buf[:0], v6src, v6dst)
	}
}
