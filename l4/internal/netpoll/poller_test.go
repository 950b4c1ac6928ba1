//go:build linux

package netpoll

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitMsec bounds every blocking Wait in these tests: long enough for a
// loaded machine, short enough that a lost wake-up fails instead of hanging.
const waitMsec = 30_000

func newPoller(t testing.TB) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// socketPair returns a connected non-blocking AF_UNIX stream pair.
func socketPair(t testing.TB) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	t.Cleanup(func() {
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	return fds[0], fds[1]
}

func mustWrite(t testing.TB, fd int, s string) {
	t.Helper()
	if n, err := unix.Write(fd, []byte(s)); err != nil || n != len(s) {
		t.Fatalf("write: n=%d err=%v", n, err)
	}
}

// waitOne waits for exactly one event and returns it.
func waitOne(t *testing.T, p *Poller) unix.EpollEvent {
	t.Helper()
	events := make([]unix.EpollEvent, 8)
	n, err := p.Wait(events, waitMsec)
	if err != nil || n != 1 {
		t.Fatalf("Wait = %d, %v; want 1 event", n, err)
	}
	return events[0]
}

func waitNone(t *testing.T, p *Poller) {
	t.Helper()
	events := make([]unix.EpollEvent, 8)
	if n, err := p.Wait(events, 0); err != nil || n != 0 {
		t.Fatalf("Wait(0) = %d, %v; want no event", n, err)
	}
}

func TestAddModifyDelete(t *testing.T) {
	p := newPoller(t)
	a, b := socketPair(t)

	if err := p.Add(a, unix.EPOLLIN, Token(1, 1)); err != nil {
		t.Fatalf("Add: %v", err)
	}
	waitNone(t, p)
	mustWrite(t, b, "x")
	ev := waitOne(t, p)
	if got := EventData(&ev); got != Token(1, 1) || ev.Events&unix.EPOLLIN == 0 {
		t.Fatalf("event = data %#x events %#x; want data %#x with EPOLLIN", got, ev.Events, Token(1, 1))
	}

	if err := p.Modify(a, unix.EPOLLOUT, Token(2, 5)); err != nil {
		t.Fatalf("Modify: %v", err)
	}
	ev = waitOne(t, p)
	if got := EventData(&ev); got != Token(2, 5) || ev.Events != unix.EPOLLOUT {
		t.Fatalf("event = data %#x events %#x; want data %#x events EPOLLOUT only", got, ev.Events, Token(2, 5))
	}

	if err := p.Delete(a); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	waitNone(t, p)
}

func TestCtlErrors(t *testing.T) {
	p := newPoller(t)
	a, b := socketPair(t)
	if err := p.Add(a, unix.EPOLLIN, 1); err != nil {
		t.Fatalf("Add: %v", err)
	}
	closedFd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatalf("eventfd: %v", err)
	}
	unix.Close(closedFd)

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"add twice", func() error { return p.Add(a, unix.EPOLLIN, 1) }, unix.EEXIST},
		{"add reserved data", func() error { return p.Add(b, unix.EPOLLIN, Token(math.MaxUint32, math.MaxUint32)) }, ErrReservedData},
		{"modify reserved data", func() error { return p.Modify(a, unix.EPOLLIN, wakeData) }, ErrReservedData},
		{"modify unregistered", func() error { return p.Modify(b, unix.EPOLLIN, 2) }, unix.ENOENT},
		{"delete unregistered", func() error { return p.Delete(b) }, unix.ENOENT},
		{"add closed fd", func() error { return p.Add(closedFd, unix.EPOLLIN, 3) }, unix.EBADF},
		{"delete closed fd", func() error { return p.Delete(closedFd) }, unix.EBADF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
		})
	}
}

// TestEventDataRoundTrip checks EventData against data the kernel itself
// copied back, which is what pins down the struct layout.
func TestEventDataRoundTrip(t *testing.T) {
	p := newPoller(t)
	a, _ := socketPair(t)
	// A fresh socket is writable, so EPOLLOUT is reported at once.
	if err := p.Add(a, unix.EPOLLOUT, 0); err != nil {
		t.Fatalf("Add: %v", err)
	}
	tests := []uint64{
		0, 1, math.MaxUint32, 1 << 32, 0x0123456789abcdef,
		Token(7, math.MaxUint32), Token(math.MaxUint32, 7), math.MaxUint64 - 1,
	}
	for _, want := range tests {
		if err := p.Modify(a, unix.EPOLLOUT, want); err != nil {
			t.Fatalf("Modify(%#x): %v", want, err)
		}
		ev := waitOne(t, p)
		if got := EventData(&ev); got != want {
			t.Errorf("EventData = %#x; want %#x", got, want)
		}
	}
}

func TestEdgeTriggered(t *testing.T) {
	p := newPoller(t)
	a, b := socketPair(t)
	if err := p.Add(a, unix.EPOLLIN|unix.EPOLLET, 9); err != nil {
		t.Fatalf("Add: %v", err)
	}
	mustWrite(t, b, "first")
	waitOne(t, p)
	// The byte is still unread, but edge-triggered mode reports an edge once.
	waitNone(t, p)
	mustWrite(t, b, "second")
	if ev := waitOne(t, p); EventData(&ev) != 9 {
		t.Fatalf("EventData = %d; want 9", EventData(&ev))
	}
}

func TestWakeUnblocksWait(t *testing.T) {
	p := newPoller(t)
	errc := make(chan error, 1)
	go func() { errc <- p.Wake() }()

	start := time.Now()
	n, err := p.Wait(make([]unix.EpollEvent, 4), waitMsec)
	if err != nil || n != 0 {
		t.Fatalf("Wait = %d, %v; want 0 events (wake-up hidden)", n, err)
	}
	if elapsed := time.Since(start); elapsed >= waitMsec*time.Millisecond {
		t.Fatalf("Wait returned by timeout after %v, not by Wake", elapsed)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Wake: %v", err)
	}
	assertWakeConsumed(t, p)
}

func TestWaitHidesWakeAmongEvents(t *testing.T) {
	p := newPoller(t)
	a, _ := socketPair(t)
	if err := p.Add(a, unix.EPOLLOUT, 42); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := p.Wake(); err != nil {
		t.Fatalf("Wake: %v", err)
	}
	ev := waitOne(t, p)
	if EventData(&ev) != 42 {
		t.Fatalf("EventData = %d; want 42", EventData(&ev))
	}
	assertWakeConsumed(t, p)
}

func TestWakeCoalesces(t *testing.T) {
	const wakers = 1000
	wakeAll := func(p *Poller) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range wakers {
			wg.Go(func() {
				<-start
				if err := p.Wake(); err != nil {
					t.Errorf("Wake: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
	}

	t.Run("one eventfd write", func(t *testing.T) {
		p := newPoller(t)
		wakeAll(p)
		// The eventfd counter sums the writes: it is the write count.
		if got := readEventfd(t, p); got != 1 {
			t.Fatalf("eventfd writes = %d; want 1", got)
		}
	})
	t.Run("one wake-up", func(t *testing.T) {
		p := newPoller(t)
		wakeAll(p)
		if n, err := p.Wait(make([]unix.EpollEvent, 4), waitMsec); err != nil || n != 0 {
			t.Fatalf("Wait = %d, %v; want 0", n, err)
		}
		assertWakeConsumed(t, p)
		waitNone(t, p)
	})
	t.Run("re-armed after Wait", func(t *testing.T) {
		p := newPoller(t)
		wakeAll(p)
		p.Wait(make([]unix.EpollEvent, 4), waitMsec)
		wakeAll(p)
		if got := readEventfd(t, p); got != 1 {
			t.Fatalf("eventfd writes after re-arm = %d; want 1", got)
		}
	})
}

func readEventfd(t *testing.T, p *Poller) uint64 {
	t.Helper()
	var buf [8]byte
	if _, err := unix.Read(p.efd, buf[:]); err != nil {
		t.Fatalf("read eventfd: %v", err)
	}
	return binary.NativeEndian.Uint64(buf[:])
}

func assertWakeConsumed(t *testing.T, p *Poller) {
	t.Helper()
	var buf [8]byte
	if _, err := unix.Read(p.efd, buf[:]); err != unix.EAGAIN {
		t.Fatalf("eventfd read = %v; want EAGAIN (drained)", err)
	}
	if p.wakePending.Load() != 0 {
		t.Fatal("wake flag still set after Wait consumed the wake-up")
	}
}

func TestClose(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	epfd, efd := p.epfd, p.efd
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, fd := range []int{epfd, efd} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("fd %d after Close: fcntl err = %v; want EBADF", fd, err)
		}
	}
	tests := []struct {
		name string
		op   func() error
	}{
		{"Close", p.Close},
		{"Wake", p.Wake},
		{"Wait", func() error { _, err := p.Wait(make([]unix.EpollEvent, 1), 0); return err }},
		{"Add", func() error { return p.Add(0, unix.EPOLLIN, 1) }},
		{"Modify", func() error { return p.Modify(0, unix.EPOLLIN, 1) }},
		{"Delete", func() error { return p.Delete(0) }},
	}
	for _, tt := range tests {
		if err := tt.op(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v; want ErrClosed", tt.name, err)
		}
	}
}

// TestWakeRacingClose runs Wakes against Close; under -race it also
// checks that the close lock orders them.
func TestWakeRacingClose(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				// Re-arm so that Wakes keep reaching the eventfd write.
				p.wakePending.Store(0)
				if err := p.Wake(); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("Wake = %v; want nil or ErrClosed", err)
					return
				}
			}
		})
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	if err := p.Wake(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wake after Close = %v; want ErrClosed", err)
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		slot, gen uint32
		want      uint64
	}{
		{0, 0, 0},
		{1, 0, 1},
		{0, 1, 1 << 32},
		{0xdeadbeef, 0x01020304, 0x01020304_deadbeef},
		{math.MaxUint32, math.MaxUint32, wakeData},
	}
	for _, tt := range tests {
		tok := Token(tt.slot, tt.gen)
		if tok != tt.want {
			t.Errorf("Token(%#x, %#x) = %#x; want %#x", tt.slot, tt.gen, tok, tt.want)
		}
		if slot, gen := SplitToken(tok); slot != tt.slot || gen != tt.gen {
			t.Errorf("SplitToken(%#x) = %#x, %#x; want %#x, %#x", tok, slot, gen, tt.slot, tt.gen)
		}
	}
}

func BenchmarkWakePending(b *testing.B) {
	p := newPoller(b)
	p.Wake()
	b.ReportAllocs()
	for b.Loop() {
		p.Wake()
	}
}

func BenchmarkWakeWait(b *testing.B) {
	p := newPoller(b)
	events := make([]unix.EpollEvent, 4)
	b.ReportAllocs()
	for b.Loop() {
		p.Wake()
		if n, err := p.Wait(events, waitMsec); n != 0 || err != nil {
			b.Fatalf("Wait = %d, %v", n, err)
		}
	}
}
