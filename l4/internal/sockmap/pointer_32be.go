//go:build linux && mips

package sockmap

import "unsafe"

// pointer is an address in a __u64 attribute field (see bpf.go): the low
// half of it, which comes second on a big-endian host.
type pointer struct {
	_ uint32
	p unsafe.Pointer
}
