package sockmap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// These tests pin down what the kernel relay does at the edges that
// decide whether a proxy can rely on it: the end of a stream, a reset,
// taking a pair out of the map, and a receiver that stops reading. Each
// states the kernel's behaviour as found on Linux 6.18; a failure means
// the kernel changed, and the conclusions in docs/architecture.md ("No
// kernel fast path") should be checked again.

// randomBlock returns n deterministic pseudo-random bytes.
func randomBlock(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// passFIN passes the FIN of one side's peer on to the other side, as a
// proxy on the kernel relay must: wait for it (EPOLLRDHUP), then until
// every byte received before it is in the other socket's send queue, and
// only then shut that socket down for writing.
func passFIN(t testing.TB, c *chain, base counts, fromA bool) {
	t.Helper()
	from, to := c.b, c.a
	if fromA {
		from, to = c.a, c.b
	}
	waitEvent(t, from, unix.EPOLLRDHUP, 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for held := c.held(t, base, fromA, true); held != 0; held = c.held(t, base, fromA, true) {
		if time.Now().After(deadline) {
			t.Fatalf("the kernel still holds %d bytes after 20 s", held)
		}
		time.Sleep(time.Millisecond) // polling the kernel's counters
	}
	if err := unix.Shutdown(to, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
}

// sendAndRead writes payload on c and half-closes it, while it reads
// everything c receives until EOF; it returns what it read and the first
// error of either side.
func sendAndRead(c *net.TCPConn, payload []byte) ([]byte, error) {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-werr; err == nil {
		err = werr
	}
	return got, err
}

// sameBytes describes how got differs from want, or returns "".
func sameBytes(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("%d of %d bytes, differing from offset %d", len(got), len(want), i)
		}
	}
	return fmt.Sprintf("%d of %d bytes, equal as far as they go", len(got), len(want))
}

// The kernel relays both ways, in order, bytes queued before Add included;
// a FIN passed on only once the accounting from TCP_INFO says every byte
// before it was written delivers both streams whole, half-close included.
func TestKernelRelayWithAccountedFIN(t *testing.T) {
	m := openMap(t)
	c := newChain(t)
	c.client.SetDeadline(time.Now().Add(30 * time.Second))
	c.server.SetDeadline(time.Now().Add(30 * time.Second))
	early := []byte("sent before the pair entered the map")
	if _, err := c.client.Write(early); err != nil {
		t.Fatal(err)
	}
	// The bytes wait in a's receive queue, unread: Add must relay them.
	waitUnread(t, c.a, len(early))
	base := countsOf(t, c)
	base.recvA -= int64(len(early))
	p, err := m.Add(c.a, c.b)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(early))
	if _, err := io.ReadFull(c.server, got); err != nil || !bytes.Equal(got, early) {
		t.Fatalf("server got %q, %v; want the early bytes", got, err)
	}

	up, down := randomBlock(8<<20, 1), randomBlock(6<<20, 2)
	type result struct {
		got []byte
		err error
	}
	atServer, atClient := make(chan result, 1), make(chan result, 1)
	go func() {
		got, err := sendAndRead(c.client, up)
		atClient <- result{got, err}
	}()
	go func() {
		got, err := sendAndRead(c.server, down)
		atServer <- result{got, err}
	}()
	passFIN(t, c, base, true)
	passFIN(t, c, base, false)
	for _, r := range []struct {
		name string
		res  chan result
		want []byte
	}{{"server", atServer, up}, {"client", atClient, down}} {
		res := <-r.res
		if res.err != nil {
			t.Errorf("%s: %v", r.name, res.err)
		}
		if d := sameBytes(res.got, r.want); d != "" {
			t.Errorf("%s got %s", r.name, d)
		}
	}
	m.Remove(p)
}

// waitUnread waits until fd has at least n bytes unread.
func waitUnread(t testing.TB, fd, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes arrived", q, n)
		}
		time.Sleep(time.Millisecond) // polling the receive queue
	}
}

// smallBuffers locks the buffers on the client's way (a's send buffer,
// the client's receive buffer) at 64 KiB, so that what the client does not
// read piles up in the kernel relay whatever the sysctls allow.
func smallBuffers(t testing.TB, c *chain) {
	t.Helper()
	lockBuffers(t, c.a, c.client)
}

// lockBuffers locks fd's send buffer and its peer's receive buffer at 64
// KiB.
func lockBuffers(t testing.TB, fd int, peer *net.TCPConn) {
	t.Helper()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10); err != nil {
		t.Fatal(err)
	}
	if err := peer.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
}

// stallDownload has the server send size bytes and its FIN to a client
// that reads nothing yet, and returns once the FIN reached b, with how
// many bytes the kernel then still held for a.
func stallDownload(t *testing.T, c *chain, base counts, size int) (payload []byte, held int64) {
	t.Helper()
	smallBuffers(t, c)
	payload = randomBlock(size, 3)
	go func() {
		c.server.Write(payload)
		c.server.CloseWrite()
	}()
	waitEvent(t, c.b, unix.EPOLLRDHUP, 20*time.Second)
	return payload, c.held(t, base, false, true)
}

// readAll reads c to its end: what came, and nil for a FIN.
func readAll(c *net.TCPConn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	return io.ReadAll(c)
}

// A FIN reaches the relaying socket while the bytes before it still wait
// in the redirect queue: passed on at once, it overtakes them, and the
// client sees a clean end after a truncated stream.
func TestKernelFINOvertakesRedirectQueue(t *testing.T) {
	m := openMap(t)
	c := newChain(t)
	base := countsOf(t, c)
	if _, err := m.Add(c.a, c.b); err != nil {
		t.Fatal(err)
	}
	payload, held := stallDownload(t, c, base, 4<<20)
	if held == 0 {
		t.Fatal("the kernel held nothing when the FIN came: the FIN did not overtake the queue")
	}
	if err := unix.Shutdown(c.a, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(c.client)
	t.Logf("FIN passed on with %d bytes held: the client read %d of %d bytes, then %v", held, len(got), len(payload), err)
	if err != nil || len(got) >= len(payload) || !bytes.Equal(got, payload[:len(got)]) {
		t.Fatalf("client read %d of %d bytes, then %v; the kernel no longer truncates: want a short stream and a clean EOF",
			len(got), len(payload), err)
	}
}

// Taking a pair out of the map drops what its redirect queue holds: the
// bytes were taken from one socket and never reach the other.
func TestKernelRemoveDropsRedirectQueue(t *testing.T) {
	m := openMap(t)
	c := newChain(t)
	base := countsOf(t, c)
	p, err := m.Add(c.a, c.b)
	if err != nil {
		t.Fatal(err)
	}
	payload, held := stallDownload(t, c, base, 4<<20)
	if held == 0 {
		t.Fatal("the kernel held nothing when the FIN came")
	}
	if err := m.Remove(p); err != nil {
		t.Fatal(err)
	}
	if q, _ := unix.IoctlGetInt(c.b, unix.SIOCINQ); q != 0 {
		t.Errorf("b's receive queue holds %d bytes after Remove: the held bytes went back", q)
	}
	if err := unix.Shutdown(c.a, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(c.client)
	t.Logf("removed with %d bytes held: the client read %d of %d bytes, then %v", held, len(got), len(payload), err)
	if err != nil || int64(len(got)) > int64(len(payload))-held {
		t.Fatalf("client read %d of %d bytes, then %v; want at most %d: the kernel no longer drops a removed pair's queue",
			len(got), len(payload), err, int64(len(payload))-held)
	}
}

// A backend that answers and resets: the answer, held in the redirect
// queue when the reset comes, still reaches the client, which can then be
// reset once its socket has sent everything (the relay rules of issue
// #13). A reset socket stays in the maps until it is closed.
func TestKernelReplyBeforeResetIsDelivered(t *testing.T) {
	c := newChain(t)
	bytesBeforeReset(t, c, c.server, c.client, c.b, c.a, false)
}

// The same the other way: a client that uploads and resets; its upload
// still reaches the backend, which is then reset.
func TestKernelUploadBeforeResetIsDelivered(t *testing.T) {
	c := newChain(t)
	bytesBeforeReset(t, c, c.client, c.server, c.a, c.b, true)
}

// bytesBeforeReset has sender write 4 MiB and reset its connection to
// from, while receiver (the peer of to) reads nothing yet, so that the
// kernel still holds part of the bytes when the reset reaches from. It
// then passes the reset on as the relay rules require: once every byte is
// out of the redirect queue and acknowledged, to is reset; and it checks
// that receiver got every byte, then the reset. fromA says from is c.a.
func bytesBeforeReset(t *testing.T, c *chain, sender, receiver *net.TCPConn, from, to int, fromA bool) {
	m := openMap(t)
	lockBuffers(t, to, receiver)
	base := countsOf(t, c)
	if _, err := m.Add(c.a, c.b); err != nil {
		t.Fatal(err)
	}
	data := randomBlock(4<<20, 4)
	go func() {
		sender.Write(data)
		// Reset only once from has acknowledged everything, so that
		// the reset itself discards nothing the kernel relay had not
		// taken.
		raw, err := sender.SyscallConn()
		if err != nil {
			return
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			q := -1
			raw.Control(func(fd uintptr) { q, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
			if q == 0 {
				break
			}
			time.Sleep(time.Millisecond) // polling the sender's send queue
		}
		sender.SetLinger(0)
		sender.Close()
	}()
	if ev := waitEvent(t, from, unix.EPOLLERR, 20*time.Second); ev&unix.EPOLLERR == 0 {
		t.Fatalf("event %#x, want EPOLLERR", ev)
	}
	held := c.held(t, base, fromA, false)
	t.Logf("reset with %d bytes held", held)
	if held == 0 {
		t.Fatal("the kernel held nothing when the reset came: nothing to deliver from its queue")
	}
	cookA, cookB := cookie(t, c.a), cookie(t, c.b)
	if !inMap(t, m.verdict, cookie(t, from)) {
		t.Error("the reset socket left the verdict map before it was closed")
	}
	type result struct {
		got []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		got, err := readAll(receiver)
		res <- result{got, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		q, err := unix.IoctlGetInt(to, unix.SIOCOUTQ)
		if err != nil {
			t.Fatal(err)
		}
		if c.held(t, base, fromA, false) == 0 && q == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bytes never left the relay")
		}
		time.Sleep(time.Millisecond) // polling the kernel's counters
	}
	if err := unix.SetsockoptLinger(to, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		t.Fatal(err)
	}
	unix.Close(c.a)
	c.a = -1
	unix.Close(c.b)
	c.b = -1
	for _, k := range []uint64{cookA, cookB} {
		if inMap(t, m.verdict, k) || inMap(t, m.peers, k) {
			t.Error("a closed socket is still in a map")
		}
	}
	r := <-res
	if d := sameBytes(r.got, data); d != "" || !errors.Is(r.err, unix.ECONNRESET) {
		if d == "" {
			d = "every byte"
		}
		t.Fatalf("receiver got %s, then %v; want every byte, then a reset", d, r.err)
	}
}

// The guarantee the kernel cannot give: with the receiver not reading,
// the redirect queue grows without bound. Bytes the kernel takes from b
// are no longer charged to b, so b's receive window stays open, and the
// queue towards a is charged to nothing: the server's whole stream piles
// up in kernel memory, though every socket buffer is locked at 64 KiB.
// (splicer's own relay holds at most those buffers and one pipe.) The
// test stops at 64 MiB, a thousand times the buffers.
func TestKernelRedirectQueueIsUnbounded(t *testing.T) {
	fillRedirectQueue(t, openMap(t))
}

// The same with a stream parser attached beside the verdict program
// (strparser mode, the older way of running a verdict, which reads the
// socket through tcp_read_sock instead of tcp_read_skb): the parser takes
// each chunk whole, and the queue is just as unbounded.
func TestKernelRedirectQueueIsUnboundedWithParser(t *testing.T) {
	m := openMap(t)
	prog, err := loadProgram(parserProgram(), "splicer_parse")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(prog) })
	if err := attachProg(m.verdict, prog, unix.BPF_SK_SKB_STREAM_PARSER); err != nil {
		t.Fatal(err)
	}
	fillRedirectQueue(t, m)
}

// parserProgram is a stream parser that makes each chunk received one
// message: return skb->len (the first field of struct __sk_buff).
func parserProgram() []insn {
	const ldxW = classLDX | modeMEM | sizeW
	return []insn{{code: ldxW, regs: r0 | r1<<4}, exit()}
}

// fillRedirectQueue has a server write to a client that reads nothing
// through m, every buffer on the way locked at 64 KiB, and fails unless
// the kernel comes to hold 64 MiB for the client.
func fillRedirectQueue(t *testing.T, m *Map) {
	const (
		buffers = 64 << 10
		limit   = 64 << 20
	)
	c := newChain(t)
	for _, fd := range []int{c.a, c.b} {
		for _, opt := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, buffers); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.client.SetReadBuffer(buffers); err != nil {
		t.Fatal(err)
	}
	base := countsOf(t, c)
	if _, err := m.Add(c.a, c.b); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		block := make([]byte, 1<<20)
		c.server.SetWriteDeadline(time.Now().Add(30 * time.Second))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.server.Write(block); err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-writerDone
	}()
	start := time.Now()
	avail0 := memAvailable(t)
	var held int64
	for held < limit && time.Since(start) < 30*time.Second {
		time.Sleep(10 * time.Millisecond) // sampling the kernel's counters
		held = c.held(t, base, false, false)
	}
	elapsed := time.Since(start)
	t.Logf("the kernel held %d MiB for a client reading nothing after %v (MemAvailable %+d MiB; socket buffers %d KiB)",
		held>>20, elapsed.Round(time.Millisecond), (memAvailable(t)-avail0)>>20, buffers>>10)
	if held < limit {
		t.Fatalf("the redirect queue stopped at %d KiB: the kernel now applies backpressure, and the fast path can be reconsidered", held>>10)
	}
}

// memAvailable is the system's MemAvailable, in bytes: informative only,
// the machine is shared.
func memAvailable(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemAvailable:" {
			var kb int64
			for _, ch := range f[1] {
				kb = kb*10 + int64(ch-'0')
			}
			return kb << 10
		}
	}
	return 0
}

func cookie(t testing.TB, fd int) uint64 {
	t.Helper()
	c, err := Cookie(fd)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// inMap reports whether key is in the socket map. A lookup from user
// space returns the socket's cookie.
func inMap(t testing.TB, mapFd int, key uint64) bool {
	t.Helper()
	var v uint64
	err := lookupElem(mapFd, unsafe.Pointer(&key), unsafe.Pointer(&v))
	if err != nil && !errors.Is(err, unix.ENOENT) {
		t.Fatal(err)
	}
	return err == nil
}
