//go:build linux && (386 || arm || mipsle)

package sockmap

import "unsafe"

// pointer is an address in a __u64 attribute field (see bpf.go): the low
// half of it, which comes first on a little-endian host.
type pointer struct {
	p unsafe.Pointer
	_ uint32
}
