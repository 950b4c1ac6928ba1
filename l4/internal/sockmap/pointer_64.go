//go:build linux && !(386 || arm || mips || mipsle)

package sockmap

import "unsafe"

// pointer is an address in a __u64 attribute field (see bpf.go).
type pointer struct{ p unsafe.Pointer }
