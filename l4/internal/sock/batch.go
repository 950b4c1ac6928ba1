//go:build linux

package sock

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch is a fixed set of datagram slots for recvmmsg(2) and sendmmsg(2).
// Every slot has its own buffer, peer address and control buffer, wired
// into the mmsghdr array once, so that a call allocates nothing. A Batch
// belongs to one goroutine.
//
// Receiving: Recv fills slots 0..n-1; Data, From and Dest read them.
// Sending: Next hands out the buffer of the next free slot, Commit queues
// it with its destination, Flush sends the queued slots.
type Batch struct {
	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	names   []unix.RawSockaddrInet6
	ctrl    []byte // ctrlSpace bytes per slot
	buf     []byte // bufSize bytes per slot
	bufSize int
	pktinfo bool
	queued  int    // slots committed for sending
	failed  []bool // per slot: not sent by the last Flush
}

// NewBatch returns a batch of slots datagrams of up to bufSize bytes each.
// With pktinfo, received datagrams carry their destination address (see
// EnablePktinfo) and sent ones may choose their source address.
func NewBatch(slots, bufSize int, pktinfo bool) *Batch {
	b := &Batch{
		hdrs:    make([]unix.Mmsghdr, slots),
		iovs:    make([]unix.Iovec, slots),
		names:   make([]unix.RawSockaddrInet6, slots),
		buf:     make([]byte, slots*bufSize),
		bufSize: bufSize,
		pktinfo: pktinfo,
		failed:  make([]bool, slots),
	}
	b.ctrl = make([]byte, slots*ctrlSpace)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.buf[i*bufSize]
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
	}
	return b
}

// Slots is the number of datagrams the batch holds.
func (b *Batch) Slots() int { return len(b.hdrs) }

// Recv reads up to Slots datagrams from fd with one recvmmsg call and
// returns how many it read; anything queued for sending is discarded.
// EINTR is retried; other errors are the bare errno (EAGAIN when nothing
// is queued).
func (b *Batch) Recv(fd int) (int, error) {
	b.queued = 0
	return b.recvmmsg(fd, 0, len(b.hdrs))
}

// recvmmsg reads into slots from..from+count-1 with one recvmmsg call.
func (b *Batch) recvmmsg(fd, from, count int) (int, error) {
	for i := from; i < from+count; i++ {
		b.resetSlot(i, b.bufSize)
	}
	r, err := Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[from])),
		uintptr(count), unix.MSG_DONTWAIT, 0, 0)
	if err != nil {
		return 0, err
	}
	return int(r), nil
}

// resetSlot prepares slot i to receive (or send) size bytes.
func (b *Batch) resetSlot(i, size int) {
	h := &b.hdrs[i].Hdr
	b.iovs[i].SetLen(size)
	h.Namelen = sockaddrLen
	h.Flags = 0
	h.Control = &b.ctrl[i*ctrlSpace]
	h.SetControllen(ctrlSpace)
	b.hdrs[i].Len = 0
}

// Data returns the payload of received slot i. It aliases the batch's
// buffer: valid until the next Recv.
func (b *Batch) Data(i int) []byte {
	off := i * b.bufSize
	return b.buf[off : off+int(b.hdrs[i].Len)]
}

// From returns the source address of received slot i.
func (b *Batch) From(i int) netip.AddrPort {
	return peer6(&b.names[i])
}

// Dest returns the local address received slot i came in on, the one a
// reply should leave from, as reported by pktinfo; the zero Addr when the
// batch has no pktinfo or the kernel gave none.
func (b *Batch) Dest(i int) netip.Addr {
	if !b.pktinfo {
		return netip.Addr{}
	}
	if data := b.cmsg(i, unix.IPPROTO_IP, unix.IP_PKTINFO); len(data) >= unix.SizeofInet4Pktinfo {
		// Spec_dst, not Addr: the local address a reply should leave
		// from, which for a datagram sent to a broadcast address is the
		// interface's own.
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
		return netip.AddrFrom4(pi.Spec_dst)
	}
	if data := b.cmsg(i, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO); len(data) >= unix.SizeofInet6Pktinfo {
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
		return netip.AddrFrom16(pi.Addr).Unmap()
	}
	return netip.Addr{}
}

// Dropped returns the socket's count of datagrams the kernel dropped before
// it could queue them (a full receive buffer), as of received slot i;
// false when the socket does not report it (see EnableDropCount). The
// count is the socket's since it was created and wraps at 2^32.
func (b *Batch) Dropped(i int) (uint32, bool) {
	data := b.cmsg(i, unix.SOL_SOCKET, unix.SO_RXQ_OVFL)
	if len(data) < 4 {
		return 0, false
	}
	return *(*uint32)(unsafe.Pointer(&data[0])), true
}

// cmsg returns the data of received slot i's control message of level and
// type, or nil.
func (b *Batch) cmsg(i int, level, typ int32) []byte {
	h := &b.hdrs[i].Hdr
	ctrl := b.ctrl[i*ctrlSpace : i*ctrlSpace+int(h.Controllen)]
	for len(ctrl) >= unix.SizeofCmsghdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		if cm.Len < unix.SizeofCmsghdr || int(cm.Len) > len(ctrl) {
			return nil
		}
		if cm.Level == level && cm.Type == typ {
			return ctrl[unix.CmsgLen(0):cm.Len]
		}
		next := unix.CmsgSpace(int(cm.Len) - unix.CmsgLen(0))
		if next > len(ctrl) {
			return nil
		}
		ctrl = ctrl[next:]
	}
	return nil
}

// Queued is the number of slots committed for sending.
func (b *Batch) Queued() int { return b.queued }

// Next returns the full buffer of the next free send slot; nil when every
// slot is queued (Flush first).
func (b *Batch) Next() []byte {
	if b.queued == len(b.hdrs) {
		return nil
	}
	off := b.queued * b.bufSize
	return b.buf[off : off+b.bufSize]
}

// Commit queues the first size bytes of the slot Next returned for to.
// With a valid from on a pktinfo batch, the datagram leaves from that
// address: the one the client wrote to on a wildcard-bound socket.
func (b *Batch) Commit(size int, to *RawAddr, from netip.Addr) {
	i := b.queued
	b.resetSlot(i, size)
	h := &b.hdrs[i].Hdr
	b.names[i] = to.sa
	h.Namelen = to.len
	h.Control = nil
	h.SetControllen(0)
	if b.pktinfo && from.IsValid() {
		h.Control = &b.ctrl[i*ctrlSpace]
		h.SetControllen(putPktinfo(b.ctrl[i*ctrlSpace:(i+1)*ctrlSpace], from))
	}
	b.queued++
}

// putPktinfo writes a control message choosing source address from into
// ctrl and returns its length.
func putPktinfo(ctrl []byte, from netip.Addr) int {
	clear(ctrl)
	cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
	data := unsafe.Pointer(&ctrl[unix.CmsgLen(0)])
	if from.Is4() {
		cm.Level, cm.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		cm.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		(*unix.Inet4Pktinfo)(data).Spec_dst = from.As4()
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	cm.Level, cm.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	cm.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	(*unix.Inet6Pktinfo)(data).Addr = from.As16()
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

// RecvTail reads up to max datagrams (max <= 0: as many as there are free
// send slots; never more) from fd with one recvmmsg call, into the slots
// after the queued ones, and returns how many it read. Nothing is queued:
// the caller reads each with Data and From at index Queued()+k, and queues
// those it keeps with Keep, in order. Errors are Recv's. A caller that
// expects one datagram asks for one: recvmmsg asked for more tries the
// socket again after the last datagram, about a tenth of the call's cost
// when one is queued (BenchmarkRecvOne).
func (b *Batch) RecvTail(fd, max int) (int, error) {
	free := len(b.hdrs) - b.queued
	if free == 0 {
		return 0, nil
	}
	if max <= 0 || max > free {
		max = free
	}
	return b.recvmmsg(fd, b.queued, max)
}

// Keep queues received slot j (at or after Queued()) for sending to to,
// from from as Commit does. A slot skipped before it is overwritten: its
// payload moves down to the first free slot.
func (b *Batch) Keep(j int, to *RawAddr, from netip.Addr) {
	n := int(b.hdrs[j].Len)
	if j != b.queued {
		copy(b.buf[b.queued*b.bufSize:], b.buf[j*b.bufSize:j*b.bufSize+n])
	}
	b.Commit(n, to, from)
}

// Flush sends every queued slot from fd with as few sendmmsg calls as the
// kernel allows (a last datagram alone without a chosen source goes with
// sendto, about 8% cheaper in BenchmarkSend1) and empties the queue. A
// datagram the kernel refuses is dropped: on EAGAIN (send buffer full) the
// rest of the queue with it, since waiting would only delay datagrams
// whose senders retry anyway. It returns how many slots it flushed; Sent
// tells which of them went out, until the next Commit.
func (b *Batch) Flush(fd int) int {
	n := b.queued
	off := 0
	for off < n {
		var (
			r   uintptr
			err error
		)
		if h := &b.hdrs[off].Hdr; off == n-1 && h.Controllen == 0 {
			// One datagram with no source to choose: sendto, which
			// spares the kernel copying and walking a message header.
			// On success r is a count of datagrams, as sendmmsg's (sendto's
			// count of bytes is 0 for an empty one).
			_, err = Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(b.iovs[off].Base)),
				uintptr(b.iovs[off].Len), unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(h.Name)), uintptr(h.Namelen))
			r = 1
		} else {
			r, err = Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[off])),
				uintptr(n-off), unix.MSG_DONTWAIT, 0, 0)
		}
		switch err {
		case nil:
			for i := off; i < off+int(r); i++ {
				b.failed[i] = false
			}
			off += int(r)
		case unix.EAGAIN:
			for ; off < n; off++ {
				b.failed[off] = true
			}
		default:
			// sendmmsg fails only on the first datagram it tries:
			// drop that one and go on with the next.
			b.failed[off] = true
			off++
		}
	}
	b.queued = 0
	return n
}

// Sent reports whether slot i went out in the last Flush.
func (b *Batch) Sent(i int) bool { return !b.failed[i] }

// Len is the length of slot i's datagram as committed.
func (b *Batch) Len(i int) int { return int(b.iovs[i].Len) }
