package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestCounters(t *testing.T) {
	b := mustNew(t, spec(0))
	b.AddBytes(10, 0)
	b.AddBytes(0, 7)
	b.AddBytes(5, 3)
	b.AddFailure(FailRefused)
	b.AddFailure(FailReset)
	b.AddFailure(FailReset)
	b.AddFailure(FailReason(200)) // unknown: counted as other
	got := b.Stats()
	want := Stats{BytesUp: 15, BytesDown: 10, Failures: [NumFailReasons]uint64{FailRefused: 1, FailReset: 2, FailOther: 1}}
	if got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

func TestConnectHistogram(t *testing.T) {
	bounds := DurationBounds()
	tests := []struct {
		d      time.Duration
		bucket int
	}{
		{-time.Second, 0},
		{0, 0},
		{100 * time.Microsecond, 0},
		{100*time.Microsecond + 1, 1},
		{time.Millisecond, 3},
		{2 * time.Millisecond, 4},
		{time.Second, 12},
		{10 * time.Second, NumDurationBounds - 1},
		{10*time.Second + 1, NumDurationBounds},
		{time.Hour, NumDurationBounds},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.d), func(t *testing.T) {
			b := mustNew(t, spec(0))
			b.ObserveConnect(tc.d)
			c := b.Stats().Connect
			var want [NumDurationBounds + 1]uint64
			want[tc.bucket] = 1
			if c.Buckets != want || c.Count() != 1 || c.Sum != max(tc.d, 0) {
				t.Fatalf("buckets %v count %d sum %v; want bucket %d (bound %v), sum %v",
					c.Buckets, c.Count(), c.Sum, tc.bucket, bounds[min(tc.bucket, NumDurationBounds-1)], max(tc.d, 0))
			}
		})
	}
	for i := 1; i < NumDurationBounds; i++ {
		if bounds[i] <= bounds[i-1] {
			t.Fatalf("bounds not ascending at %d: %v", i, bounds)
		}
	}
	if bounds[0] != 100*time.Microsecond || bounds[NumDurationBounds-1] != 10*time.Second {
		t.Fatalf("bounds span %v..%v, want 100µs..10s", bounds[0], bounds[NumDurationBounds-1])
	}
}

func TestCountersConcurrent(t *testing.T) {
	const goroutines, rounds = 8, 10000
	b := mustNew(t, spec(0))
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				b.AddBytes(3, 5)
				b.AddFailure(FailTimeout)
				b.ObserveConnect(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	const n = goroutines * rounds
	s := b.Stats()
	if s.BytesUp != 3*n || s.BytesDown != 5*n || s.Failures[FailTimeout] != n ||
		s.Connect.Buckets[3] != n || s.Connect.Sum != n*time.Millisecond {
		t.Fatalf("Stats = %+v after %d rounds", s, n)
	}
}

func TestClassifyFailure(t *testing.T) {
	tests := []struct {
		err  error
		want FailReason
	}{
		{syscall.ECONNREFUSED, FailRefused},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, FailRefused},
		{fmt.Errorf("backend b0: %w", syscall.ETIMEDOUT), FailTimeout},
		{os.ErrDeadlineExceeded, FailTimeout},
		{context.DeadlineExceeded, FailTimeout},
		{syscall.EHOSTUNREACH, FailUnreachable},
		{syscall.ENETUNREACH, FailUnreachable},
		{syscall.ECONNRESET, FailReset},
		{syscall.EPIPE, FailReset},
		{io.EOF, FailOther},
		{errors.New("boom"), FailOther},
		{nil, FailOther},
	}
	for _, tc := range tests {
		if got := ClassifyFailure(tc.err); got != tc.want {
			t.Errorf("ClassifyFailure(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestFailReasonString(t *testing.T) {
	want := map[FailReason]string{
		FailRefused: "refused", FailTimeout: "timeout", FailUnreachable: "unreachable",
		FailReset: "reset", FailOther: "other", FailReason(9): "reason(9)",
	}
	for r, name := range want {
		if got := r.String(); got != name {
			t.Errorf("FailReason(%d).String() = %q, want %q", r, got, name)
		}
	}
}
