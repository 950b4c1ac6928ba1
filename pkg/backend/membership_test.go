package backend

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
)

func specAt(addr string) Spec {
	return Spec{Address: netip.MustParseAddrPort(addr), Weight: 1}
}

// TestApply: kept backends keep their state and counters, new ones join
// healthy, removed ones leave the snapshot and the Set, and a bad spec
// list changes nothing.
func TestApply(t *testing.T) {
	a, b := mustNew(t, specAt("10.0.0.1:6379")), mustNew(t, specAt("10.0.0.2:6379"))
	set, err := NewSet([]*Backend{a, b}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !b.TryAcquire() {
		t.Fatal("TryAcquire on b")
	}
	b.SetHealthy(false)

	added, removed, err := set.Apply([]Spec{specAt("10.0.0.2:6379"), specAt("10.0.0.3:6379")})
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 1 || added[0].Address() != netip.MustParseAddrPort("10.0.0.3:6379") || !added[0].Healthy() {
		t.Fatalf("added %v", added)
	}
	if !slices.Equal(removed, []*Backend{a}) {
		t.Fatalf("removed %v, want a", removed)
	}
	if got := set.Backends(); len(got) != 2 || got[0] != b || got[1] != added[0] {
		t.Fatalf("members %v", got)
	}
	if b.Healthy() || b.Active() != 1 {
		t.Fatalf("kept backend lost its state: healthy %v, active %d", b.Healthy(), b.Active())
	}
	snap := set.Load()
	if snap.Len() != 1 || snap.Backend(0) != added[0] {
		t.Fatalf("snapshot %v, want only the new backend", snap.backends)
	}
	// A removed backend no longer rebuilds the Set.
	a.SetHealthy(false)
	a.SetHealthy(true)
	if set.Load() != snap {
		t.Fatal("a removed backend's change rebuilt the Set")
	}
	b.Release()

	// A changed identity (max_connections) replaces the backend.
	c := specAt("10.0.0.2:6379")
	c.MaxConnections = 5
	added, removed, err = set.Apply([]Spec{c, specAt("10.0.0.3:6379")})
	if err != nil || len(added) != 1 || added[0] == b || !slices.Equal(removed, []*Backend{b}) {
		t.Fatalf("identity change: added %v removed %v err %v", added, removed, err)
	}

	before := set.Backends()
	for _, bad := range [][]Spec{
		{specAt("10.0.0.4:1"), specAt("10.0.0.4:1")},
		{{Address: netip.MustParseAddrPort("10.0.0.5:1"), Weight: 0}},
	} {
		if _, _, err := set.Apply(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Apply(%v) = %v, want ErrInvalid", bad, err)
		}
	}
	if !slices.Equal(set.Backends(), before) {
		t.Fatal("a refused Apply changed the members")
	}
	set.Close()
	if _, _, err := set.Apply(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply on a closed Set = %v", err)
	}
}

// TestApplyConcurrent races Apply against readers of Backends and Load.
func TestApplyConcurrent(t *testing.T) {
	set, err := NewSet(nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, b := range set.Backends() {
				_ = b.Name()
			}
			_ = set.Load().Len()
		}
	})
	for i := range 200 {
		specs := []Spec{specAt("10.0.0.1:1")}
		if i%2 == 0 {
			specs = append(specs, specAt("10.0.0.2:1"))
		}
		if _, _, err := set.Apply(specs); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
