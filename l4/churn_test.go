package l4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// The scenarios of TestRandomResetsLoseNothing, chosen per connection.
const (
	churnClean         = iota // the client sends, half-closes; the backend echoes and closes
	churnBackendReset         // the backend sends part of a reply, then resets
	churnClientReset          // the client sends part of a request, then resets
	churnBackendFINRst        // the backend sends its reply and FIN, then resets a client still writing
	churnScenarios
)

// churnHeader is what a churn client sends first: its scenario, the size
// of the data the resetting side sends before its reset, and an id.
type churnHeader struct {
	scenario uint8
	size     uint32
	id       uint32
}

func (h churnHeader) bytes() []byte {
	b := make([]byte, 9)
	b[0] = h.scenario
	binary.BigEndian.PutUint32(b[1:], h.size)
	binary.BigEndian.PutUint32(b[5:], h.id)
	return b
}

// churnResult is what a backend saw of a client that reset.
type churnResult struct {
	got []byte
	err error
}

// waitAcked waits until c's peer acknowledged every byte c sent, so that
// a reset c sends next destroys nothing the peer's kernel had not taken.
func waitAcked(c *net.TCPConn) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		raw, err := c.SyscallConn()
		if err != nil {
			return
		}
		n := -1
		raw.Control(func(fd uintptr) { n, _ = ioctlOutq(int(fd)) })
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond) // polling the kernel's send queue
	}
}

// ioctlOutq is the count of bytes fd sent and its peer has not
// acknowledged.
func ioctlOutq(fd int) (int, error) { return unix.IoctlGetInt(fd, unix.SIOCOUTQ) }

// slowRead reads c to its end, pausing between reads when slow, and
// returns what it read and the error that ended it (nil: a FIN).
func slowRead(c net.Conn, slow bool) ([]byte, error) {
	var got bytes.Buffer
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			return got.Bytes(), nil
		}
		if err != nil {
			return got.Bytes(), err
		}
		if slow {
			time.Sleep(time.Millisecond) // a slow reader keeps bytes in the proxy
		}
	}
}

// TestRandomResetsLoseNothing mixes clean connections with resets at
// random points on both sides, with fast and slow readers, small and bulk
// transfers: every byte a side sent before its reset (and that the proxy
// had acknowledged) reaches the other side, which then sees the reset; a
// clean or FIN-first end is seen as a FIN. Each connection is counted under
// the cause its scenario implies, and fds and goroutines come back to the
// baseline. Seeded, so a failure replays.
func TestRandomResetsLoseNothing(t *testing.T) {
	const (
		conns       = 400
		concurrency = 16
		seed        = 2026
	)
	block := randomBlock(2<<20, seed)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()

	var results sync.Map // id -> churnResult, from the backend
	b := startBackend(t, func(c net.Conn) {
		defer c.Close()
		tc := c.(*net.TCPConn)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		raw := make([]byte, 9)
		if _, err := io.ReadFull(c, raw); err != nil {
			return
		}
		h := churnHeader{raw[0], binary.BigEndian.Uint32(raw[1:]), binary.BigEndian.Uint32(raw[5:])}
		slow := h.id%3 == 0
		switch h.scenario {
		case churnClean:
			got, _ := slowRead(c, slow)
			c.Write(got)
		case churnBackendReset:
			c.Write(block[:h.size])
			waitAcked(tc)
			tc.SetLinger(0)
		case churnClientReset:
			got, err := slowRead(c, slow)
			results.Store(h.id, churnResult{append([]byte(nil), got...), err})
		case churnBackendFINRst:
			c.Write(block[:h.size])
			tc.CloseWrite()
			waitAcked(tc)
			// Close with the client's bytes unread: the kernel resets.
			time.Sleep(time.Millisecond)
		}
	})
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	addr := s.Addrs("fe")[0].String()

	rng := rand.New(rand.NewPCG(seed, seed))
	type job struct {
		h    churnHeader
		slow bool
	}
	jobs := make([]job, conns)
	var want [NumCauses]uint64
	for i := range jobs {
		h := churnHeader{scenario: uint8(rng.IntN(churnScenarios)), id: uint32(i)}
		switch rng.IntN(3) {
		case 0:
			h.size = uint32(rng.IntN(100))
		case 1:
			h.size = uint32(rng.IntN(64 << 10))
		default:
			h.size = uint32(rng.IntN(len(block)))
		}
		jobs[i] = job{h, rng.IntN(2) == 0}
		switch h.scenario {
		case churnClean:
			want[CauseClientFIN]++
		case churnBackendReset:
			want[CauseBackendReset]++
		case churnClientReset:
			want[CauseClientReset]++
		case churnBackendFINRst:
			want[CauseBackendFIN]++
		}
	}

	run := func(j job) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		tc := c.(*net.TCPConn)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(j.h.bytes()); err != nil {
			return err
		}
		data := block[:j.h.size]
		switch j.h.scenario {
		case churnClean:
			go func() {
				c.Write(data)
				tc.CloseWrite()
			}()
			got, err := slowRead(c, j.slow)
			if err != nil || !bytes.Equal(got, data) {
				return fmt.Errorf("clean: %d of %d bytes back, then %v", len(got), len(data), err)
			}
		case churnBackendReset:
			got, err := slowRead(c, j.slow)
			if !errors.Is(err, errConnReset) || !bytes.Equal(got, data) {
				return fmt.Errorf("backend reset: %d of %d bytes, then %v; want all, then a reset", len(got), len(data), err)
			}
		case churnClientReset:
			if _, err := c.Write(data); err != nil {
				return err
			}
			waitAcked(tc)
			tc.SetLinger(0)
			c.Close()
			deadline := time.Now().Add(20 * time.Second)
			for {
				if r, ok := results.Load(j.h.id); ok {
					r := r.(churnResult)
					if !errors.Is(r.err, errConnReset) || !bytes.Equal(r.got, data) {
						return fmt.Errorf("client reset: backend got %d of %d bytes, then %v; want all, then a reset", len(r.got), len(data), r.err)
					}
					return nil
				}
				if time.Now().After(deadline) {
					return errors.New("client reset: the backend never finished reading")
				}
				time.Sleep(time.Millisecond) // waiting for the backend's report
			}
		case churnBackendFINRst:
			// Keep writing while reading: the backend's reset answers
			// these bytes, after its FIN.
			go func() {
				for i := 0; i < 8; i++ {
					if _, err := c.Write([]byte("more")); err != nil {
						return
					}
					time.Sleep(time.Millisecond)
				}
			}()
			got, err := slowRead(c, j.slow)
			if err != nil || !bytes.Equal(got, data) {
				return fmt.Errorf("FIN then reset: %d of %d bytes, then %v; want all, then a FIN", len(got), len(data), err)
			}
		}
		return nil
	}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []string
	)
	sem := make(chan struct{}, concurrency)
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := run(j); err != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("conn %d (slow %v, %d bytes): %v", i, j.slow, j.h.size, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, f := range failed {
		if i == 10 {
			t.Errorf("... and %d more", len(failed)-10)
			break
		}
		t.Error(f)
	}
	testutil.WaitFor(t, 10*time.Second, "every connection ended", func() bool { return s.ActiveConnections() == 0 })
	got, _ := s.Counters("fe")
	if got.Closed != want {
		t.Errorf("causes:%s\nwant:%s", causeCounts(got.Closed), causeCounts(want))
	}
	if n := s.PipesInUse(); n != 0 {
		t.Errorf("%d pipes still in use", n)
	}
	s.Close()
	b.close()
	settle(t, fds, goroutines)
}
