package backend

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestMergeByIdentity merges a new list into three running backends: one
// kept, one re-weighted and re-capped, one moved to another address under
// the same name, one removed, one added. Kept backends are the same
// objects with their runtime state; Apply changes nothing else.
func TestMergeByIdentity(t *testing.T) {
	specs := []Spec{spec(0), spec(1), spec(2), spec(3)}
	var running []*Backend
	for _, s := range specs {
		running = append(running, mustNew(t, s))
	}
	set := mustSet(t, running, nil, 0)
	// Runtime control on the kept ones: a weight, a drain.
	if err := running[0].SetWeight(7); err != nil {
		t.Fatal(err)
	}
	if err := running[1].SetState(Drain); err != nil {
		t.Fatal(err)
	}
	running[0].TryAcquire() // an open connection

	next := []Spec{spec(0), spec(1), spec(2), spec(4)}
	next[1].Weight, next[1].MaxConnections, next[1].Backup = 3, 9, true
	next[2].Address = netip.MustParseAddrPort("10.9.9.9:5432") // same name, new server
	plan, err := Merge(running, specs, next)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.Kept, []string{"b0"}) || !slices.Equal(plan.Updated, []string{"b1"}) ||
		!slices.Equal(plan.Added, []string{"b2", "b4"}) || !slices.Equal(plan.Removed, []string{"b2", "b3"}) || !plan.Changed() {
		t.Fatalf("kept %v updated %v added %v removed %v", plan.Kept, plan.Updated, plan.Added, plan.Removed)
	}
	if plan.Backends[0] != running[0] || plan.Backends[1] != running[1] || plan.Backends[2] == running[2] {
		t.Fatal("kept backends must be the running objects, a moved one a new object")
	}
	// Nothing changes before Apply.
	if running[1].Weight() != 1 || running[1].Backup() || running[3].State() != Ready {
		t.Fatal("Merge changed a running backend")
	}
	plan.Apply()
	set.Close()
	newSet := mustSet(t, plan.Backends, nil, 0)
	if running[0].Weight() != 7 || running[0].Active() != 1 {
		t.Errorf("kept backend: weight %d active %d, want its runtime weight 7 and its connection", running[0].Weight(), running[0].Active())
	}
	if b := running[1]; b.Weight() != 3 || b.MaxConnections() != 9 || !b.Backup() || b.State() != Drain {
		t.Errorf("updated backend: %+v state %v, want the new weight, cap and backup flag, still drained", b.Spec(), b.State())
	}
	if running[2].State() != Drain || running[3].State() != Drain {
		t.Error("retired backends must be drained")
	}
	if got := plan.Retired(); len(got) != 2 || got[0] != running[2] || got[1] != running[3] {
		t.Errorf("retired %v", got)
	}
	if got := names(newSet.Load()); !slices.Equal(got, []string{"b0", "b2", "b4"}) {
		t.Errorf("new snapshot %v", got)
	}
	// A second merge with the plan's specs keeps everything.
	again, err := Merge(plan.Backends, plan.Specs, next)
	if err != nil || again.Changed() || len(again.Kept) != 4 {
		t.Errorf("merging the same specs again: %+v, %v", again, err)
	}
}

func TestMergeRefusals(t *testing.T) {
	run := []*Backend{mustNew(t, spec(0))}
	bad := spec(1)
	bad.Weight = 0
	for name, specs := range map[string][]Spec{
		"duplicate name": {spec(1), spec(1)},
		"invalid weight": {bad},
	} {
		if _, err := Merge(run, []Spec{spec(0)}, specs); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Merge(run, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("mismatched running and configured: %v", err)
	}
}

func TestSetMaxConnectionsAndBackup(t *testing.T) {
	b := mustNew(t, spec(0))
	p := mustNew(t, spec(1))
	s := mustSet(t, []*Backend{b, p}, nil, 0)
	if err := b.SetMaxConnections(1); err != nil {
		t.Fatal(err)
	}
	if !b.TryAcquire() || b.TryAcquire() {
		t.Fatal("cap 1: one acquire, then refusal")
	}
	if err := b.SetMaxConnections(2); err != nil || !b.TryAcquire() {
		t.Fatalf("raised cap: %v", err)
	}
	if err := b.SetMaxConnections(-1); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative cap: %v", err)
	}
	b.Release()
	b.Release()
	b.SetBackup(true)
	if got := names(s.Load()); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("with b0 a backup: %v", got)
	}
}

// TestMergeAddedSlowStart: a backend a merge adds to a serving frontend
// starts its slow start, as a recovered one does; a kept one does not.
func TestMergeAddedSlowStart(t *testing.T) {
	b0 := mustNew(t, spec(0))
	s0 := mustSet(t, []*Backend{b0}, nil, time.Hour)
	plan, err := Merge([]*Backend{b0}, []Spec{spec(0)}, []Spec{spec(0), spec(1)})
	if err != nil {
		t.Fatal(err)
	}
	plan.Apply()
	s := mustSet(t, plan.Backends, nil, time.Hour)
	s0.Close()
	snap := s.Load()
	if snap.Len() != 2 || snap.Weight(0) != MaxWeight || snap.Weight(1) >= MaxWeight/5 {
		t.Fatalf("weights %d, %d: want the kept backend at %d and the added one ramping from a tenth",
			snap.Weight(0), snap.Weight(1), MaxWeight)
	}
}
