//go:build linux

package sockmap

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The bpf(2) commands splicer uses, with their attribute layouts from
// include/uapi/linux/bpf.h. Each attribute struct is the leading part of
// union bpf_attr that the command reads; the kernel zero-fills the rest,
// so passing its exact size is valid on every kernel that knows the
// command.

// A pointer (pointer_64.go, pointer_32.go) is a __u64 field of union
// bpf_attr that holds an address. It is kept as an unsafe.Pointer, never
// a uintptr, so that the garbage collector sees what it points to and a
// stack that grows (and moves) before the system call updates it.
var _ [8 - unsafe.Sizeof(pointer{})]struct{} // exactly 8 bytes: the
var _ [unsafe.Sizeof(pointer{}) - 8]struct{} // layout of a __u64

// mapCreateAttr is BPF_MAP_CREATE's.
type mapCreateAttr struct {
	mapType    uint32
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	mapFlags   uint32
	innerMapFd uint32
	numaNode   uint32
	mapName    [16]byte
}

// progLoadAttr is BPF_PROG_LOAD's.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              pointer
	license            pointer
	logLevel           uint32
	logSize            uint32
	logBuf             pointer
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// progAttachAttr is BPF_PROG_ATTACH's.
type progAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

// mapElemAttr is BPF_MAP_LOOKUP_ELEM's, BPF_MAP_UPDATE_ELEM's and
// BPF_MAP_DELETE_ELEM's.
type mapElemAttr struct {
	mapFd uint32
	_     uint32
	key   pointer
	value pointer
	flags uint64
}

// lookupElem reads key's value into value.
func lookupElem(mapFd int, key, value unsafe.Pointer) error {
	attr := mapElemAttr{mapFd: uint32(mapFd), key: pointer{p: key}, value: pointer{p: value}}
	_, err := bpf(unix.BPF_MAP_LOOKUP_ELEM, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// bpf is the bpf(2) system call; EINTR is retried (a load may take long
// enough to be interrupted by the Go runtime's preemption signal).
func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), nil
	}
}

// createMap makes a map and returns its fd.
func createMap(typ, keySize, valueSize, maxEntries uint32, name string) (int, error) {
	attr := mapCreateAttr{mapType: typ, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries}
	copy(attr.mapName[:len(attr.mapName)-1], name)
	return bpf(unix.BPF_MAP_CREATE, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
}

// updateElem sets key to value in the map; the kernel copies both.
func updateElem(mapFd int, key, value unsafe.Pointer, flags uint64) error {
	attr := mapElemAttr{mapFd: uint32(mapFd), key: pointer{p: key}, value: pointer{p: value}, flags: flags}
	_, err := bpf(unix.BPF_MAP_UPDATE_ELEM, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// deleteElem removes key from the map.
func deleteElem(mapFd int, key unsafe.Pointer) error {
	attr := mapElemAttr{mapFd: uint32(mapFd), key: pointer{p: key}}
	_, err := bpf(unix.BPF_MAP_DELETE_ELEM, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// attachProg attaches the program to the map as attachType.
func attachProg(mapFd, progFd int, attachType uint32) error {
	attr := progAttachAttr{targetFd: uint32(mapFd), attachBpfFd: uint32(progFd), attachType: attachType}
	_, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}
