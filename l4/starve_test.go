package l4

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestOutOfFDsAtBackendSocketKeepsClient: when the backend socket cannot
// be made for want of fds, the accepted client is not dropped. It waits
// (state "starved") while the loop's listeners pause, and is served once
// fds are free again; a client that arrives meanwhile waits in the kernel
// backlog and is served too.
func TestOutOfFDsAtBackendSocketKeepsClient(t *testing.T) {
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
	addr := s.Addrs("fe")[0].String()
	// One exchange first, so nothing the relay sets up once is left to
	// take an fd later.
	warm := dialFE(t, s)
	warm.SetDeadline(time.Now().Add(5 * time.Second))
	if got, _, err := exchange(warm, []byte("warm")); err != nil || got != [32]byte(sha256Of([]byte("warm"))) {
		t.Fatalf("warm-up exchange: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, "the warm-up connection closed", func() bool { return s.ActiveConnections() == 0 })

	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	restore := func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &orig) }
	t.Cleanup(restore)
	// Room for exactly two more fds: the client's socket here and the
	// proxy's accept of it. The backend socket is the third.
	lim := orig
	lim.Cur = limitWithRoom(t, 2)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		restore()
		t.Fatal(err)
	}
	defer c.Close()
	starved := func() bool {
		conns, _ := s.Connections("fe", 0, 10)
		return len(conns) == 1 && conns[0].State == "starved"
	}
	// Not testutil.WaitFor: the limit must be restored before the test fails.
	deadline := time.Now().Add(5 * time.Second)
	for !starved() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling the loop's view
	}
	if !starved() {
		restore()
		conns, _ := s.Connections("fe", 0, 10)
		t.Fatalf("the client is not starved: %+v", conns)
	}
	restore()
	// A second client comes while the listeners pause.
	c2 := dialFE(t, s)
	for i, conn := range []net.Conn{c, c2} {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("hello")); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("client %d: echo %q, %v", i, buf, err)
		}
	}
	if fc, _ := s.Counters("fe"); fc.Closed[CauseLocalError] != 0 || fc.Total != 3 {
		t.Errorf("after the shortage: %d accepted, %d ended by a local error; want 3 and 0", fc.Total, fc.Closed[CauseLocalError])
	}
	if st := s.Backends("fe")[0].Stats(); st.Failures != [len(st.Failures)]uint64{} {
		t.Errorf("the shortage was counted against the backend: %v", st.Failures)
	}
}

// A client starved for longer than it may wait (queue_timeout) ends with a
// local error and a reset; the backend is not charged.
func TestStarvedClientGivesUp(t *testing.T) {
	const wait = 300 * time.Millisecond
	b := startBackend(t, echo)
	s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
		fb.QueueTimeout(wait)
	}))
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	restore := func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &orig) }
	t.Cleanup(restore)
	lim := orig
	lim.Cur = limitWithRoom(t, 2)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := net.DialTimeout("tcp", s.Addrs("fe")[0].String(), 5*time.Second)
	if err != nil {
		restore()
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	d := time.Since(start)
	restore()
	if !errors.Is(err, errConnReset) {
		t.Fatalf("starved client: %v, want a reset", err)
	}
	if d < wait || d > wait+300*time.Millisecond {
		t.Errorf("starved client reset after %v, want about %v", d, wait)
	}
	waitCause(t, s, CauseLocalError, 1)
	if st := s.Backends("fe")[0].Stats(); st.Failures != [len(st.Failures)]uint64{} || st.Active != 0 {
		t.Errorf("backend stats after the shortage: failures %v", st.Failures)
	}
}

// limitWithRoom returns the RLIMIT_NOFILE value under which exactly n
// more fds can be opened: the limit bounds fd numbers, and new fds take
// the lowest free ones.
func limitWithRoom(t *testing.T, n int) uint64 {
	t.Helper()
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	names, err := dir.Readdirnames(-1)
	self := int(dir.Fd()) // listed, but free again once closed
	dir.Close()
	if err != nil {
		t.Fatal(err)
	}
	used := make(map[int]bool, len(names))
	for _, name := range names {
		if fd, err := strconv.Atoi(name); err == nil && fd != self {
			used[fd] = true
		}
	}
	for fd := 0; ; fd++ {
		if !used[fd] {
			if n--; n == 0 {
				return uint64(fd + 1)
			}
		}
	}
}
