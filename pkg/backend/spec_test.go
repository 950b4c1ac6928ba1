package backend

import (
	"net/netip"
	"slices"
	"testing"
)

// TestSpecReportsRuntimeValues: Spec gives the backend's identity with the
// weight, cap and backup flag in force now, changed at runtime since New.
func TestSpecReportsRuntimeValues(t *testing.T) {
	addr := netip.MustParseAddrPort("10.0.0.1:80")
	b := mustNew(t, Spec{Address: addr, Weight: 1})
	if err := b.SetWeight(7); err != nil {
		t.Fatal(err)
	}
	if err := b.SetMaxConnections(9); err != nil {
		t.Fatal(err)
	}
	b.SetBackup(true)
	if got, want := b.Spec(), (Spec{Name: "10.0.0.1:80", Address: addr, Weight: 7, MaxConnections: 9, Backup: true}); got != want {
		t.Fatalf("Spec() = %+v, want %+v", got, want)
	}
}

// TestMergeUnnamedSpecs: a spec without a name is known by its address, so
// an unnamed backend configured again with a new weight is the same
// backend, updated, not removed and added.
func TestMergeUnnamedSpecs(t *testing.T) {
	addr := netip.MustParseAddrPort("10.0.0.1:80")
	running := []*Backend{mustNew(t, Spec{Address: addr, Weight: 1})}
	plan, err := Merge(running, []Spec{{Address: addr, Weight: 1}}, []Spec{{Address: addr, Weight: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.Updated, []string{"10.0.0.1:80"}) || len(plan.Added) != 0 || len(plan.Removed) != 0 || plan.Backends[0] != running[0] {
		t.Fatalf("updated %v added %v removed %v, same backend %v", plan.Updated, plan.Added, plan.Removed, plan.Backends[0] == running[0])
	}
}
