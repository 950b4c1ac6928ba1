//go:build linux

package sockmap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// insn is one eBPF instruction, struct bpf_insn: an opcode, the
// destination and source registers in one byte, a 16-bit offset and a
// 32-bit immediate, all in the host's byte order (see encode).
type insn struct {
	code uint8
	regs uint8 // dst | src<<4
	off  int16
	imm  int32
}

// Opcode parts (include/uapi/linux/bpf_common.h and bpf.h).
const (
	classLD    = 0x00
	classLDX   = 0x01
	classSTX   = 0x03
	classJMP   = 0x05
	classALU64 = 0x07

	sizeW   = 0x00 // 32-bit
	sizeDW  = 0x18 // 64-bit
	modeIMM = 0x00
	modeMEM = 0x60

	opADD  = 0x00
	opMOV  = 0xb0
	opCALL = 0x80
	opEXIT = 0x90

	srcK = 0x00 // immediate operand
	srcX = 0x08 // register operand

	pseudoMapFD = 1 // src of a 64-bit immediate load: imm is a map fd
)

// Registers.
const (
	r0  = 0 // return value
	r1  = 1 // first argument (the context, on entry)
	r2  = 2
	r3  = 3
	r4  = 4
	r6  = 6  // callee-saved
	r10 = 10 // frame pointer, read-only
)

// Helper function ids (enum bpf_func_id).
const (
	helperGetSocketCookie = 46
	helperSkRedirectHash  = 72
)

func mov64Reg(dst, src uint8) insn { return insn{code: classALU64 | opMOV | srcX, regs: dst | src<<4} }
func mov64Imm(dst uint8, imm int32) insn {
	return insn{code: classALU64 | opMOV | srcK, regs: dst, imm: imm}
}
func add64Imm(dst uint8, imm int32) insn {
	return insn{code: classALU64 | opADD | srcK, regs: dst, imm: imm}
}
func stxDW(dst uint8, off int16, src uint8) insn {
	return insn{code: classSTX | modeMEM | sizeDW, regs: dst | src<<4, off: off}
}
func call(helper int32) insn { return insn{code: classJMP | opCALL, imm: helper} }
func exit() insn             { return insn{code: classJMP | opEXIT} }

// loadMapFD is the two-instruction load of a map's address into dst: the
// verifier replaces the fd with the map.
func loadMapFD(dst uint8, fd int) [2]insn {
	return [2]insn{{code: classLD | modeIMM | sizeDW, regs: dst | pseudoMapFD<<4, imm: int32(fd)}, {}}
}

// verdictProgram is the stream verdict run on every chunk of bytes a
// socket of the verdict map receives:
//
//	key = bpf_get_socket_cookie(skb)    // the receiving socket's cookie
//	return bpf_sk_redirect_hash(skb, peers, &key, 0)
//
// peers maps each socket's cookie to its peer socket, and flags 0 sends
// the bytes out of the peer (its egress), as if written to it. The
// helper's result is the verdict: SK_PASS once the redirect is set up,
// SK_DROP when the cookie is not in peers, which Map.Add's ordering rules
// out (see Map).
func verdictProgram(peers int) []insn {
	ld := loadMapFD(r2, peers)
	return []insn{
		mov64Reg(r6, r1),
		call(helperGetSocketCookie),
		stxDW(r10, -8, r0),
		mov64Reg(r1, r6),
		ld[0], ld[1],
		mov64Reg(r3, r10),
		add64Imm(r3, -8),
		mov64Imm(r4, 0),
		call(helperSkRedirectHash),
		exit(),
	}
}

// license is the program's license string. The helpers it calls are not
// restricted to GPL programs; the string is recorded with the program.
const license = "Dual MIT/GPL"

// logSize is the verifier log buffer: ample for a program of a few
// instructions, and the kernel truncates (ENOSPC) rather than overflows.
const logSize = 64 << 10

// LoadError is a program the kernel refused: Errno says why (EPERM and
// EACCES for missing privileges, EINVAL for a kernel that does not know
// the program type, or a verifier refusal), and Log is the verifier's
// account, when it gave one.
type LoadError struct {
	Errno unix.Errno
	Log   string
}

// Error names the errno and, when the verifier gave one, its log.
func (e *LoadError) Error() string {
	if e.Log == "" {
		return fmt.Sprintf("loading the sk_skb verdict program: %v", e.Errno)
	}
	return fmt.Sprintf("loading the sk_skb verdict program: %v; verifier log:\n%s", e.Errno, e.Log)
}

// Unwrap returns the errno, so errors.Is(err, unix.EPERM) works.
func (e *LoadError) Unwrap() error { return e.Errno }

// loadProgram loads insns as an sk_skb program and returns its fd. On a
// refusal the error is a *LoadError carrying the verifier log: loaded
// first without a log (the verifier runs faster and the common case needs
// none), then once more with one to say why.
func loadProgram(insns []insn, name string) (int, error) {
	fd, err := load(insns, name, nil)
	if err == nil {
		return fd, nil
	}
	errno, _ := err.(unix.Errno)
	buf := make([]byte, logSize)
	if fd, err := load(insns, name, buf); err == nil {
		return fd, nil // the first refusal was transient
	}
	log := buf
	if i := bytes.IndexByte(log, 0); i >= 0 {
		log = log[:i]
	}
	return -1, &LoadError{Errno: errno, Log: string(bytes.TrimSpace(log))}
}

// bigEndian is set on a big-endian host.
var bigEndian = binary.NativeEndian.Uint16([]byte{1, 0}) != 1

// encode lays insns out as the kernel reads them: host byte order, and
// the register nibbles in the order of the C bit-fields (dst_reg:4 then
// src_reg:4), which puts dst in the low nibble on a little-endian host
// and in the high one on a big-endian host.
func encode(insns []insn) []byte {
	code := make([]byte, 8*len(insns))
	for i, in := range insns {
		b := code[8*i:]
		b[0], b[1] = in.code, in.regs
		if bigEndian {
			b[1] = in.regs<<4 | in.regs>>4
		}
		binary.NativeEndian.PutUint16(b[2:], uint16(in.off))
		binary.NativeEndian.PutUint32(b[4:], uint32(in.imm))
	}
	return code
}

// load is one BPF_PROG_LOAD, with a verifier log into buf when not nil.
func load(insns []insn, name string, buf []byte) (int, error) {
	code := encode(insns)
	lic := []byte(license + "\x00")
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_SK_SKB,
		insnCnt:  uint32(len(insns)),
		insns:    pointer{p: unsafe.Pointer(&code[0])},
		license:  pointer{p: unsafe.Pointer(&lic[0])},
	}
	copy(attr.progName[:len(attr.progName)-1], name)
	if buf != nil {
		attr.logLevel, attr.logSize = 1, uint32(len(buf))
		attr.logBuf = pointer{p: unsafe.Pointer(&buf[0])}
	}
	return bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
}
