//go:build linux

package sock

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpPair returns a receiving UDP socket on loopback and its address, and a
// sending socket; both close at cleanup.
func udpPair(t testing.TB) (rx int, addr netip.AddrPort, tx int) {
	t.Helper()
	rx, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(rx) })
	// Room for a whole batch of datagrams however the kernel accounts them.
	if err := unix.SetsockoptInt(rx, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
		t.Fatal(err)
	}
	addr, err = LocalAddr(rx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err = UDPSocket(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(tx) })
	return rx, addr, tx
}

func TestBatchRoundTrip(t *testing.T) {
	rx, addr, tx := udpPair(t)
	to := MakeRawAddr(addr)
	out := NewBatch(8, 256, false)
	for i := 0; i < 5; i++ {
		buf := out.Next()
		n := copy(buf, fmt.Sprintf("datagram %d", i))
		out.Commit(n, &to, netip.Addr{})
	}
	if n := out.Flush(tx); n != 5 || out.Queued() != 0 {
		t.Fatalf("Flush flushed %d, left %d queued; want 5, 0", n, out.Queued())
	}
	for i := 0; i < 5; i++ {
		if !out.Sent(i) || out.Len(i) != len("datagram 0") {
			t.Errorf("slot %d: sent %v, length %d", i, out.Sent(i), out.Len(i))
		}
	}
	txAddr, err := LocalAddr(tx)
	if err != nil {
		t.Fatal(err)
	}
	in := NewBatch(8, 256, false)
	n, err := in.Recv(rx)
	if err != nil || n != 5 {
		t.Fatalf("Recv = %d, %v; want 5", n, err)
	}
	for i := 0; i < n; i++ {
		if got, want := in.Data(i), []byte(fmt.Sprintf("datagram %d", i)); !bytes.Equal(got, want) {
			t.Errorf("slot %d = %q, want %q", i, got, want)
		}
		if from := in.From(i); from.Port() != txAddr.Port() || from.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("slot %d from %v, want 127.0.0.1:%d", i, from, txAddr.Port())
		}
	}
	if _, err := in.Recv(rx); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("Recv on an empty socket: %v, want EAGAIN", err)
	}
}

// A socket bound to 0.0.0.0 learns each datagram's destination and can
// answer from it.
func TestBatchPktinfo(t *testing.T) {
	rx, err := ListenUDP(netip.MustParseAddrPort("0.0.0.0:0"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rx)
	bound, err := LocalAddr(rx)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnablePktinfo(rx, bound); err != nil {
		t.Fatal(err)
	}
	dest := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.9"), bound.Port())
	_, _, tx := udpPair(t)
	to := MakeRawAddr(dest)
	if err := SendTo(tx, []byte("hi"), &to); err != nil {
		t.Fatal(err)
	}
	in := NewBatch(4, 64, true)
	n, err := in.Recv(rx)
	if err != nil || n != 1 {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if got := in.Dest(0); got != dest.Addr() {
		t.Fatalf("Dest = %v, want %v", got, dest.Addr())
	}
	// The reply leaves from 127.0.0.9: tx reads it with that source.
	out := NewBatch(1, 64, true)
	back := MakeRawAddr(in.From(0))
	out.Commit(copy(out.Next(), "ho"), &back, in.Dest(0))
	if out.Flush(rx) != 1 || !out.Sent(0) {
		t.Fatal("reply not sent")
	}
	buf := make([]byte, 64)
	for {
		n, from, err := RecvFrom(tx, buf)
		if errors.Is(err, unix.EAGAIN) {
			continue // the reply is on its way through loopback
		}
		if err != nil || string(buf[:n]) != "ho" || from != dest {
			t.Fatalf("reply %q from %v (%v), want \"ho\" from %v", buf[:n], from, err, dest)
		}
		return
	}
}

// An ICMP port unreachable lands on the error queue as ECONNREFUSED.
func TestReadErrorRefused(t *testing.T) {
	_, addr, tx := udpPair(t)
	dead := netip.AddrPortFrom(addr.Addr(), addr.Port()+1)
	for attempt := 0; attempt < 20; attempt++ {
		probe, err := ListenUDP(dead, false)
		if err == nil {
			unix.Close(probe)
			break
		}
		dead = netip.AddrPortFrom(dead.Addr(), dead.Port()+1)
	}
	to := MakeRawAddr(dead)
	if err := SendTo(tx, []byte("anyone?"), &to); err != nil {
		t.Fatal(err)
	}
	// Loopback delivers the ICMP error before sendto returns.
	e, err := ReadError(tx)
	if err != nil || e.Errno != unix.ECONNREFUSED || !e.ICMP || e.To != dead {
		t.Fatalf("ReadError = %+v, %v; want ECONNREFUSED from ICMP about %v", e, err, dead)
	}
	if _, err := ReadError(tx); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("second ReadError: %v, want EAGAIN", err)
	}
}

// Receiving 32 queued datagrams one recvfrom at a time against one
// recvmmsg: the per-datagram cost of the syscall is what batching saves.
func BenchmarkRecv32(b *testing.B) {
	for _, mode := range []string{"recvfrom", "recvmmsg"} {
		b.Run(mode, func(b *testing.B) {
			rx, addr, tx := udpPair(b)
			to := MakeRawAddr(addr)
			payload := make([]byte, 64)
			batch := NewBatch(32, MaxDatagram, false)
			buf := make([]byte, MaxDatagram)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j := 0; j < 32; j++ {
					if err := SendTo(tx, payload, &to); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				got := 0
				if mode == "recvmmsg" {
					for got < 32 {
						n, err := batch.Recv(rx)
						if err != nil {
							b.Fatal(err)
						}
						got += n
					}
				} else {
					for ; got < 32; got++ {
						if _, _, err := RecvFrom(rx, buf); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/datagram")
		})
	}
}

// Sending 32 datagrams one sendto at a time against one sendmmsg.
func BenchmarkSend32(b *testing.B) {
	for _, mode := range []string{"sendto", "sendmmsg"} {
		b.Run(mode, func(b *testing.B) {
			rx, addr, tx := udpPair(b)
			to := MakeRawAddr(addr)
			payload := make([]byte, 64)
			batch := NewBatch(32, 64, false)
			drain := NewBatch(32, MaxDatagram, false)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "sendmmsg" {
					for j := 0; j < 32; j++ {
						batch.Commit(copy(batch.Next(), payload), &to, netip.Addr{})
					}
					if batch.Flush(tx) != 32 || !batch.Sent(31) {
						b.Fatal("batch not sent")
					}
				} else {
					for j := 0; j < 32; j++ {
						if err := SendTo(tx, payload, &to); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				for got := 0; got < 32; {
					n, err := drain.Recv(rx)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/datagram")
		})
	}
}

// RecvTail reads into the free slots after the queued ones; Keep queues
// the chosen ones in order, moving each down over any skipped before it.
func TestBatchRecvTailKeep(t *testing.T) {
	rx, addr, tx := udpPair(t)
	sink, sinkAddr, _ := udpPair(t)
	to := MakeRawAddr(addr)
	for _, m := range []string{"one", "skip me", "three"} {
		if err := SendTo(tx, []byte(m), &to); err != nil {
			t.Fatal(err)
		}
	}
	out := NewBatch(8, 64, false)
	dst := MakeRawAddr(sinkAddr)
	out.Commit(copy(out.Next(), "zero"), &dst, netip.Addr{})
	n, err := out.RecvTail(rx, 0)
	if err != nil || n != 3 {
		t.Fatalf("RecvTail = %d, %v; want 3", n, err)
	}
	first := out.Queued()
	for j := first; j < first+n; j++ {
		if string(out.Data(j)) != "skip me" {
			out.Keep(j, &dst, netip.Addr{})
		}
	}
	if out.Flush(rx) != 3 || !out.Sent(0) || !out.Sent(1) || !out.Sent(2) {
		t.Fatal("Flush did not send all 3")
	}
	in := NewBatch(8, 64, false)
	got := []string{}
	for len(got) < 3 {
		n, err := in.Recv(sink)
		if errors.Is(err, unix.EAGAIN) {
			continue // on its way through loopback
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			got = append(got, string(in.Data(i)))
		}
	}
	if fmt.Sprint(got) != "[zero one three]" {
		t.Errorf("sink got %q, want zero, one, three", got)
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:53", "127.0.0.1:53"},
		{"[::ffff:127.0.0.1]:53", "127.0.0.1:53"},
		{"[::1%lo]:53", "[::1]:53"},           // no scope outside link-local
		{"[fe80::1%lo]:53", "[fe80::1%1]:53"}, // lo is interface 1
		{"[fe80::1%7]:53", "[fe80::1%7]:53"},
		{"[fe80::1%nosuchif]:53", "[fe80::1]:53"},
	} {
		if got := Canonical(netip.MustParseAddrPort(tc.in)); got.String() != tc.want {
			t.Errorf("Canonical(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// A datagram the kernel refuses in the middle of a batch is dropped alone:
// Flush goes on with the next, and Sent says which went out.
func TestFlushReportsDrops(t *testing.T) {
	_, addr, tx := udpPair(t)
	to := MakeRawAddr(addr)
	bad := MakeRawAddr(netip.AddrPort{}) // zero-length address: EDESTADDRREQ
	out := NewBatch(3, 64, false)
	out.Commit(copy(out.Next(), "a"), &to, netip.Addr{})
	out.Commit(copy(out.Next(), "b"), &bad, netip.Addr{})
	out.Commit(copy(out.Next(), "c"), &to, netip.Addr{})
	if n := out.Flush(tx); n != 3 {
		t.Fatalf("Flush = %d, want 3", n)
	}
	if !out.Sent(0) || out.Sent(1) || !out.Sent(2) {
		t.Errorf("sent = %v %v %v, want true false true", out.Sent(0), out.Sent(1), out.Sent(2))
	}
}

// RecvTail reads no more than it is asked for, and never more than the
// free slots; what it leaves stays queued on the socket.
func TestRecvTailMax(t *testing.T) {
	rx, addr, tx := udpPair(t)
	to := MakeRawAddr(addr)
	for _, m := range []string{"a", "b", "c", "d"} {
		if err := SendTo(tx, []byte(m), &to); err != nil {
			t.Fatal(err)
		}
	}
	b := NewBatch(3, 64, false)
	b.Commit(copy(b.Next(), "queued"), &to, netip.Addr{})
	read := func(max int) string {
		t.Helper()
		first := b.Queued()
		n, err := b.RecvTail(rx, max)
		if err != nil {
			t.Fatalf("RecvTail(%d): %v", max, err)
		}
		var got string
		for j := first; j < first+n; j++ {
			got += string(b.Data(j))
		}
		return got
	}
	if got := read(1); got != "a" {
		t.Errorf("RecvTail(1) read %q, want \"a\"", got)
	}
	if got := read(5); got != "bc" { // two free slots
		t.Errorf("RecvTail(5) with 2 free slots read %q, want \"bc\"", got)
	}
	if got := read(0); got != "d" { // what is left
		t.Errorf("RecvTail(0) read %q, want \"d\"", got)
	}
}

// A batch of one goes out with sendto: an empty datagram is sent and
// arrives empty, and a refused one is reported, as from sendmmsg.
func TestFlushOne(t *testing.T) {
	rx, addr, tx := udpPair(t)
	to := MakeRawAddr(addr)
	out := NewBatch(1, 64, false)
	out.Commit(0, &to, netip.Addr{})
	if n := out.Flush(tx); n != 1 || !out.Sent(0) {
		t.Fatalf("Flush of an empty datagram = %d, sent %v; want 1, true", n, out.Sent(0))
	}
	in := NewBatch(4, MaxDatagram, false)
	if n, err := in.Recv(rx); n != 1 || err != nil || len(in.Data(0)) != 0 {
		t.Fatalf("Recv = %d, %v; want one empty datagram", n, err)
	}
	bad := MakeRawAddr(netip.AddrPort{})
	out.Commit(copy(out.Next(), "x"), &bad, netip.Addr{})
	if n := out.Flush(tx); n != 1 || out.Sent(0) {
		t.Errorf("Flush to no address = %d, sent %v; want 1, false", n, out.Sent(0))
	}
}

// DropCount and the SO_RXQ_OVFL count read the same counter: with a full
// receive buffer, every datagram sent is either queued or counted, and the
// last queued datagram carries the count as it was then.
func TestDropCount(t *testing.T) {
	rx, addr, tx := udpPair(t)
	// The smallest buffer the kernel grants: a handful of datagrams.
	if err := unix.SetsockoptInt(rx, unix.SOL_SOCKET, unix.SO_RCVBUF, 0); err != nil {
		t.Fatal(err)
	}
	if err := EnableDropCount(rx); err != nil {
		t.Fatal(err)
	}
	if n, err := DropCount(rx); err != nil || n != 0 {
		t.Fatalf("DropCount on a fresh socket = %d, %v; want 0", n, err)
	}
	to := MakeRawAddr(addr)
	const sent = 200
	out := NewBatch(1, 1024, false)
	for i := 0; i < sent; i++ {
		out.Commit(copy(out.Next(), make([]byte, 1000)), &to, netip.Addr{})
		// Loopback queues (or drops) the datagram before sendmmsg returns.
		if n := out.Flush(tx); n != 1 || !out.Sent(0) {
			t.Fatalf("datagram %d not sent", i)
		}
	}
	in := NewBatch(8, 2048, false)
	queued, lastCount := 0, uint32(0)
	for {
		n, err := in.Recv(rx)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		queued += n
		if c, ok := in.Dropped(n - 1); ok {
			lastCount = c
		}
	}
	drops, err := DropCount(rx)
	if err != nil {
		t.Fatal(err)
	}
	if queued == 0 || queued == sent {
		t.Fatalf("%d of %d datagrams queued: the buffer did not fill as the test needs", queued, sent)
	}
	if queued+int(drops) != sent {
		t.Errorf("queued %d + dropped %d = %d; want %d", queued, drops, queued+int(drops), sent)
	}
	// The last datagram queued came before the final drops.
	if lastCount >= drops {
		t.Errorf("last datagram carried count %d; want below the final %d", lastCount, drops)
	}
}

// Sending one datagram, as a loop flushing the reply of one request
// does: sendmmsg with one message against sendto, which Flush uses for a
// batch of one without a control message.
func BenchmarkSend1(b *testing.B) {
	for _, mode := range []string{"sendmmsg", "flush"} {
		b.Run(mode, func(b *testing.B) {
			rx, addr, tx := udpPair(b)
			to := MakeRawAddr(addr)
			payload := make([]byte, 64)
			batch := NewBatch(1, 64, false)
			drain := NewBatch(32, MaxDatagram, false)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch.Commit(copy(batch.Next(), payload), &to, netip.Addr{})
				if mode == "sendmmsg" {
					batch.queued = 0
					if r, err := Syscall6(unix.SYS_SENDMMSG, uintptr(tx), uintptr(unsafe.Pointer(&batch.hdrs[0])), 1, unix.MSG_DONTWAIT, 0, 0); r != 1 || err != nil {
						b.Fatal("not sent", err)
					}
				} else if batch.Flush(tx) != 1 || !batch.Sent(0) {
					b.Fatal("not sent")
				}
				if i%32 == 31 {
					b.StopTimer()
					for got := 0; got < 32; {
						n, err := drain.Recv(rx)
						if err != nil {
							b.Fatal(err)
						}
						got += n
					}
					b.StartTimer()
				}
			}
		})
	}
}

// Receiving the one datagram queued, as a request/response flow reads its
// reply: recvmmsg asked for one against asked for 32, which tries the
// socket again after the first.
func BenchmarkRecvOne(b *testing.B) {
	for _, max := range []int{1, 32} {
		b.Run(fmt.Sprintf("vlen%d", max), func(b *testing.B) {
			rx, addr, tx := udpPair(b)
			to := MakeRawAddr(addr)
			payload := make([]byte, 64)
			batch := NewBatch(32, MaxDatagram, false)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := SendTo(tx, payload, &to); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if n, err := batch.RecvTail(rx, max); n != 1 || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}
