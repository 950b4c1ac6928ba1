package backend

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

func TestTryAcquireCap(t *testing.T) {
	sp := spec(0)
	sp.MaxConnections = 2
	b, other := mustNew(t, sp), mustNew(t, spec(1))
	s := mustSet(t, []*Backend{b, other}, nil, 0)

	for i := 0; i < 2; i++ {
		if !b.TryAcquire() {
			t.Fatalf("TryAcquire %d below the cap failed", i+1)
		}
	}
	if b.TryAcquire() {
		t.Fatal("TryAcquire at the cap succeeded")
	}
	if b.Active() != 2 || b.Stats().Total != 2 {
		t.Fatalf("Active %d Total %d; want 2 and 2 (a refused TryAcquire counts nowhere)", b.Active(), b.Stats().Total)
	}
	testutil.WaitFor(t, 10*time.Second, "full backend to leave the snapshot", func() bool {
		return slices.Equal(names(s.Load()), []string{"b1"})
	})
	b.Release()
	testutil.WaitFor(t, 10*time.Second, "released backend to return", func() bool {
		return slices.Equal(names(s.Load()), []string{"b0", "b1"})
	})
	if !b.TryAcquire() {
		t.Fatal("TryAcquire after a Release failed")
	}
}

func TestTryAcquireUnlimited(t *testing.T) {
	b := mustNew(t, spec(0))
	for i := range 1000 {
		if !b.TryAcquire() {
			t.Fatalf("TryAcquire #%d failed without a cap", i)
		}
	}
	if b.Active() != 1000 {
		t.Fatalf("Active = %d, want 1000", b.Active())
	}
}

// TestTryAcquireConcurrentCap hammers a capped backend from several
// goroutines: holders never exceed the cap, and once all let go the backend
// is back in the snapshot (no cap crossing is lost).
func TestTryAcquireConcurrentCap(t *testing.T) {
	const limit = 3
	sp := spec(0)
	sp.MaxConnections = limit
	b := mustNew(t, sp)
	s := mustSet(t, []*Backend{b}, nil, 0)
	var holders, most, granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5000 {
				if !b.TryAcquire() {
					continue
				}
				granted.Add(1)
				n := holders.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				holders.Add(-1)
				b.Release()
			}
		}()
	}
	wg.Wait()
	if most.Load() > limit || most.Load() < 1 {
		t.Fatalf("at most %d concurrent holders, want 1..%d", most.Load(), limit)
	}
	if b.Active() != 0 || b.Stats().Total != uint64(granted.Load()) {
		t.Fatalf("Active %d Total %d; want 0 and %d", b.Active(), b.Stats().Total, granted.Load())
	}
	testutil.WaitFor(t, 10*time.Second, "backend back in the snapshot", func() bool { return s.Load().Len() == 1 })
}
