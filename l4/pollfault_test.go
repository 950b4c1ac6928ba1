package l4

import (
	"errors"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// failBackendPoll makes the next n registrations of backend sockets with
// s's pollers fail with err (all of them for n < 0), and returns the count
// of registrations tried.
func failBackendPoll(t *testing.T, s *Server, n int64, err error) *atomic.Int64 {
	var calls atomic.Int64
	f := func() error {
		if c := calls.Add(1); n < 0 || c <= n {
			return err
		}
		return nil
	}
	s.backendPollFault.Store(&f)
	t.Cleanup(func() { s.backendPollFault.Store(nil) })
	return &calls
}

// TestEpollAddFailureAtBackendSocketKeepsClient (issue 13, item 4): when
// EPOLL_CTL_ADD of the backend socket fails (ENOSPC at
// fs.epoll.max_user_watches, ENOMEM), the failure is splicer's own: the
// client waits (starved) and is served once registration works again, and
// nothing is held against the backend (no connect failure, no report to
// passive health, no try used up); if it never works, the client ends with
// local_error and a reset after queue_timeout, and still the backend is
// not charged.
func TestEpollAddFailureAtBackendSocketKeepsClient(t *testing.T) {
	for _, errno := range []error{unix.ENOSPC, unix.ENOMEM} {
		t.Run(errno.Error()+" transient", func(t *testing.T) {
			b := startBackend(t, echo)
			rec := newRecorder()
			s := startObserved(t, testConfig(t, []netip.AddrPort{b.addr}, nil), rec)
			calls := failBackendPoll(t, s, 3, errno)
			c := dialFE(t, s)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("echo %q, %v", buf, err)
			}
			if n := calls.Load(); n != 4 {
				t.Errorf("%d registrations tried, want 3 failed and 1 that worked", n)
			}
			c.CloseWrite()
			if _, err := io.ReadAll(c); err != nil {
				t.Fatal(err)
			}
			causes := waitCause(t, s, CauseClientFIN, 1)
			causes[CauseClientFIN] = 0
			if causes != [NumCauses]uint64{} {
				t.Errorf("other causes counted:%s", causeCounts(causes))
			}
			checkNotCharged(t, s, rec)
		})
	}

	t.Run("persistent", func(t *testing.T) {
		const wait = 300 * time.Millisecond
		b := startBackend(t, echo)
		rec := newRecorder()
		s := startObserved(t, testConfig(t, []netip.AddrPort{b.addr}, func(fb *config.FrontendBuilder) {
			fb.QueueTimeout(wait)
		}), rec)
		failBackendPoll(t, s, -1, unix.ENOSPC)
		start := time.Now()
		c := dialFE(t, s)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		d := time.Since(start)
		if !errors.Is(err, errConnReset) {
			t.Fatalf("starved client: %v, want a reset", err)
		}
		if d < wait*8/10 || d > 2*wait {
			t.Errorf("starved client reset after %v, want %v (from -20%% to +100%%)", d, wait)
		}
		causes := waitCause(t, s, CauseLocalError, 1)
		causes[CauseLocalError] = 0
		if causes != [NumCauses]uint64{} {
			t.Errorf("other causes counted:%s", causeCounts(causes))
		}
		checkNotCharged(t, s, rec)
		if !s.Backends("fe")[0].Healthy() {
			t.Error("the backend is marked down")
		}
	})
}

// checkNotCharged checks that frontend "fe"'s backend has no failure, no
// reset and no report to passive health, and holds no slot.
func checkNotCharged(t *testing.T, s *Server, rec *recorder) {
	t.Helper()
	b := s.Backends("fe")[0]
	testutil.WaitFor(t, 5*time.Second, "the backend's slot released", func() bool { return b.Active() == 0 })
	if st := b.Stats(); st.Failures != [len(st.Failures)]uint64{} || st.Resets != 0 {
		t.Errorf("the local failure was counted against the backend: failures %v, resets %d", st.Failures, st.Resets)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.failed[b]) != 0 || rec.resets[b] != 0 {
		t.Errorf("passive health was told: connect failures %v, resets %d", rec.failed[b], rec.resets[b])
	}
}
