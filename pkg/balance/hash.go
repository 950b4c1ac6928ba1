package balance

import (
	"encoding/binary"
	"net/netip"
)

// KeyFromAddr hashes a client IP into a balancing key. It allocates nothing
// and uses no random seed, so every splicer instance, in every process and
// version, maps a client to the same key: maglev's cross-instance agreement
// rests on it. An IPv4 address and its IPv4-mapped IPv6 form give the same
// key; an IPv6 zone is ignored.
func KeyFromAddr(a netip.Addr) uint64 {
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	// Multiplying hi by an odd constant is a bijection that runs beside the
	// loads of lo, leaving a single mix64 on the critical path.
	return mix64(lo ^ hi*0x9e3779b97f4a7c15)
}

// mix64 is the splitmix64 finalizer: a fixed bijection on uint64 in which
// every input bit affects every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// fnv1a64 is 64-bit FNV-1a: a fixed, portable string hash (Go's map hash and
// hash/maphash are seeded per process, which would break determinism).
func fnv1a64(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
