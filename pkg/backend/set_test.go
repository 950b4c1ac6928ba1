package backend

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

func TestSnapshotMembership(t *testing.T) {
	// Backends b0, b1 are primaries, b2, b3 backups; each has a cap of 1.
	type change func(t *testing.T, bs []*Backend)
	down := func(i int) change { return func(_ *testing.T, bs []*Backend) { bs[i].SetHealthy(false) } }
	state := func(i int, s State) change {
		return func(t *testing.T, bs []*Backend) {
			if err := bs[i].SetState(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	full := func(i int) change {
		return func(t *testing.T, bs []*Backend) {
			if !bs[i].TryAcquire() {
				t.Fatalf("TryAcquire on b%d failed", i)
			}
		}
	}
	tests := []struct {
		name    string
		changes []change
		want    []string
	}{
		{name: "all up: primaries only", want: []string{"b0", "b1"}},
		{name: "one primary down", changes: []change{down(0)}, want: []string{"b1"}},
		{name: "one primary drained", changes: []change{state(1, Drain)}, want: []string{"b0"}},
		{name: "one primary in maint", changes: []change{state(0, Maint)}, want: []string{"b1"}},
		{name: "one primary at its cap", changes: []change{full(0)}, want: []string{"b1"}},
		{name: "every primary out: backups", changes: []change{down(0), state(1, Drain)}, want: []string{"b2", "b3"}},
		{name: "primaries full: backups", changes: []change{full(0), full(1)}, want: []string{"b2", "b3"}},
		{name: "primaries and a backup out", changes: []change{down(0), down(1), state(2, Maint)}, want: []string{"b3"}},
		{name: "nothing available", changes: []change{down(0), down(1), down(2), full(3)}, want: []string{}},
		{name: "backup out, primaries up", changes: []change{down(2)}, want: []string{"b0", "b1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bs []*Backend
			for i := range 4 {
				sp := spec(i)
				sp.MaxConnections = 1
				sp.Backup = i >= 2
				bs = append(bs, mustNew(t, sp))
			}
			s := mustSet(t, bs, nil, 0)
			for _, c := range tc.changes {
				c(t, bs)
			}
			// Cap crossings rebuild asynchronously.
			testutil.WaitFor(t, 10*time.Second, "snapshot "+tc.name, func() bool { return slices.Equal(names(s.Load()), tc.want) })
		})
	}
}

func TestBackupOnlyWhenEveryPrimaryIsOut(t *testing.T) {
	var bs []*Backend
	for i := range 5 {
		sp := spec(i)
		sp.Backup = i >= 3
		bs = append(bs, mustNew(t, sp))
	}
	s := mustSet(t, bs, nil, 0)
	primaries := []string{"b0", "b1", "b2"}
	for i := range 3 {
		if got := names(s.Load()); !slices.Equal(got, primaries[i:]) {
			t.Fatalf("with %d primaries down: snapshot %v, want %v", i, got, primaries[i:])
		}
		bs[i].SetHealthy(false)
	}
	if got := names(s.Load()); !slices.Equal(got, []string{"b3", "b4"}) {
		t.Fatalf("every primary down: snapshot %v, want the backups", got)
	}
	bs[1].SetHealthy(true)
	if got := names(s.Load()); !slices.Equal(got, []string{"b1"}) {
		t.Fatalf("a primary back: snapshot %v, want [b1]", got)
	}
}

func TestDrainAndMaint(t *testing.T) {
	tests := []struct {
		state State
	}{{Drain}, {Maint}}
	for _, tc := range tests {
		t.Run(tc.state.String(), func(t *testing.T) {
			b, other := mustNew(t, spec(0)), mustNew(t, spec(1))
			s := mustSet(t, []*Backend{b, other}, nil, 0)
			if !b.TryAcquire() {
				t.Fatal("TryAcquire on a ready backend failed")
			}
			if err := b.SetState(tc.state); err != nil {
				t.Fatal(err)
			}
			if got := names(s.Load()); !slices.Equal(got, []string{"b1"}) {
				t.Fatalf("snapshot %v, want [b1]", got)
			}
			// A stale snapshot must not place new connections either.
			if b.TryAcquire() {
				t.Fatal("TryAcquire succeeded on a backend out of Ready")
			}
			// The existing connection is untouched and ends normally.
			if b.Active() != 1 {
				t.Fatalf("Active = %d, want the existing 1", b.Active())
			}
			b.Release()
			if b.Active() != 0 || b.State() != tc.state {
				t.Fatalf("after Release: Active %d state %v", b.Active(), b.State())
			}
			if err := b.SetState(Ready); err != nil {
				t.Fatal(err)
			}
			if got := names(s.Load()); !slices.Equal(got, []string{"b0", "b1"}) {
				t.Fatalf("back to ready: snapshot %v, want [b0 b1]", got)
			}
		})
	}
}

func TestNext(t *testing.T) {
	var bs []*Backend
	for i := range 4 {
		bs = append(bs, mustNew(t, spec(i)))
	}
	bs[2].SetHealthy(false) // before the Set: not in its snapshot
	snap := mustSet(t, bs, nil, 0).Load()
	single := mustSet(t, []*Backend{mustNew(t, spec(9))}, nil, 0).Load()
	empty := mustSet(t, nil, nil, 0).Load()
	tests := []struct {
		name  string
		snap  *Snapshot
		after *Backend
		want  *Backend
	}{
		{"first", snap, bs[0], bs[1]},
		{"middle", snap, bs[1], bs[3]},
		{"last wraps", snap, bs[3], bs[0]},
		{"absent gives first", snap, bs[2], bs[0]},
		{"nil gives first", snap, nil, bs[0]},
		{"only itself", single, single.Backend(0), nil},
		{"empty", empty, bs[0], nil},
	}
	for _, tc := range tests {
		if got := tc.snap.Next(tc.after); got != tc.want {
			t.Errorf("%s: Next = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNewSetRejects(t *testing.T) {
	b := mustNew(t, spec(0))
	twin := mustNew(t, spec(0))
	tests := []struct {
		name      string
		members   []*Backend
		slowStart time.Duration
	}{
		{"nil backend", []*Backend{b, nil}, 0},
		{"same backend twice", []*Backend{b, b}, 0},
		{"same name twice", []*Backend{b, twin}, 0},
		{"negative slow start", []*Backend{b}, -time.Second},
	}
	for _, tc := range tests {
		if s, err := NewSet(tc.members, nil, tc.slowStart); !errors.Is(err, ErrInvalid) || s != nil {
			t.Errorf("%s: NewSet = %v, %v; want nil and ErrInvalid", tc.name, s, err)
		}
	}
}

// recorder is a Preparer that counts its calls and returns the snapshot
// length, so tests can tell which build a snapshot came from.
type recorder struct {
	mu    sync.Mutex
	calls int
}

func (r *recorder) Prepare(s *Snapshot) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return s.Len()
}

func TestPreparerRunsPerSnapshot(t *testing.T) {
	b0, b1 := mustNew(t, spec(0)), mustNew(t, spec(1))
	var r recorder
	s := mustSet(t, []*Backend{b0, b1}, &r, 0)
	b0.SetHealthy(false)
	b0.SetHealthy(false) // no change: no rebuild
	if got := s.Load().Prepared(); got != 1 || r.calls != 2 {
		t.Fatalf("Prepared = %v after %d builds; want 1 after 2", got, r.calls)
	}
}

func TestNewSetAdoptsBackends(t *testing.T) {
	b0, b1 := mustNew(t, spec(0)), mustNew(t, spec(1))
	old := mustSet(t, []*Backend{b0, b1}, nil, 0)
	cur := mustSet(t, []*Backend{b0, b1}, nil, 0)
	b0.SetHealthy(false)
	if got := names(cur.Load()); !slices.Equal(got, []string{"b1"}) {
		t.Fatalf("new Set snapshot %v, want [b1]", got)
	}
	if got := names(old.Load()); !slices.Equal(got, []string{"b0", "b1"}) {
		t.Fatalf("old Set snapshot %v changed, want [b0 b1]", got)
	}
}

func TestCloseFreezes(t *testing.T) {
	b0, b1 := mustNew(t, spec(0)), mustNew(t, spec(1))
	s := mustSet(t, []*Backend{b0, b1}, nil, 0)
	before := s.Load()
	s.Close()
	b0.SetHealthy(false)
	if s.Load() != before {
		t.Fatal("a closed Set published a new snapshot")
	}
	if got := s.Backends(); !slices.Equal(got, []*Backend{b0, b1}) {
		t.Fatalf("Backends = %v", got)
	}
}

// TestConcurrentChanges races control changes, cap crossings and readers;
// under -race it checks the copy-on-write publication, and at the end that
// the last change of each backend is what the snapshot shows.
func TestConcurrentChanges(t *testing.T) {
	var bs []*Backend
	for i := range 8 {
		sp := spec(i)
		sp.MaxConnections = 2
		bs = append(bs, mustNew(t, sp))
	}
	s := mustSet(t, bs, &recorder{}, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() { // control
			defer wg.Done()
			b := bs[g]
			for i := range 500 {
				b.SetHealthy(i%2 == 1)
				if err := b.SetState(State(i % 3)); err != nil {
					t.Error(err)
					return
				}
				if err := b.SetWeight(1 + i%MaxWeight); err != nil {
					t.Error(err)
					return
				}
			}
			b.SetHealthy(true)
			if err := b.SetState(Ready); err != nil {
				t.Error(err)
			}
		}()
		go func() { // data plane
			defer wg.Done()
			for range 2000 {
				snap := s.Load()
				for i := range snap.Len() {
					if b := snap.Backend(i); b.TryAcquire() {
						b.Release()
					}
				}
			}
		}()
	}
	wg.Wait()
	want := []string{"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"}
	testutil.WaitFor(t, 10*time.Second, "every backend back", func() bool { return slices.Equal(names(s.Load()), want) })
	for _, b := range bs {
		if b.Active() != 0 {
			t.Fatalf("%s: Active = %d after every Release", b.Name(), b.Active())
		}
	}
}
