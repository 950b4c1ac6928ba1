package backend

import (
	"errors"
	"net/netip"
	"testing"
)

func TestNew(t *testing.T) {
	addr := netip.MustParseAddrPort("10.0.0.1:5432")
	tests := []struct {
		name     string
		spec     Spec
		wantErr  bool
		wantName string
	}{
		{name: "named", spec: Spec{Name: "pg1", Address: addr, Weight: 7, MaxConnections: 3, Backup: true}, wantName: "pg1"},
		{name: "name defaults to address", spec: Spec{Address: addr, Weight: 1}, wantName: "10.0.0.1:5432"},
		{name: "max weight", spec: Spec{Address: addr, Weight: MaxWeight}, wantName: "10.0.0.1:5432"},
		{name: "no address", spec: Spec{Name: "x", Weight: 1}, wantErr: true},
		{name: "weight 0", spec: Spec{Address: addr, Weight: 0}, wantErr: true},
		{name: "weight too big", spec: Spec{Address: addr, Weight: MaxWeight + 1}, wantErr: true},
		{name: "negative max connections", spec: Spec{Address: addr, Weight: 1, MaxConnections: -1}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.spec)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalid) || b != nil {
					t.Fatalf("New = %v, %v; want nil and an ErrInvalid", b, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Name() != tc.wantName || b.Address() != tc.spec.Address || b.Weight() != tc.spec.Weight ||
				b.EffectiveWeight() != tc.spec.Weight || b.MaxConnections() != tc.spec.MaxConnections ||
				b.Backup() != tc.spec.Backup || !b.Healthy() || b.State() != Ready || b.Active() != 0 {
				t.Fatalf("New(%+v) gave name %q addr %v weight %d/%d max %d backup %v healthy %v state %v active %d",
					tc.spec, b.Name(), b.Address(), b.Weight(), b.EffectiveWeight(), b.MaxConnections(),
					b.Backup(), b.Healthy(), b.State(), b.Active())
			}
		})
	}
}

func TestSetWeight(t *testing.T) {
	b := mustNew(t, spec(0))
	other := mustNew(t, spec(1))
	s := mustSet(t, []*Backend{b, other}, nil, 0)
	for _, w := range []int{0, -1, MaxWeight + 1} {
		if err := b.SetWeight(w); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetWeight(%d) = %v, want ErrInvalid", w, err)
		}
	}
	if err := b.SetWeight(4); err != nil {
		t.Fatal(err)
	}
	// The heaviest member is scaled to 4*64 = 256, the other to 64.
	snap := s.Load()
	if b.Weight() != 4 || snap.Weight(0) != 256 || snap.Weight(1) != 64 {
		t.Fatalf("after SetWeight(4): Weight %d, snapshot weights %d %d; want 4, 256, 64",
			b.Weight(), snap.Weight(0), snap.Weight(1))
	}
}

func TestStateNames(t *testing.T) {
	tests := []struct {
		state State
		name  string
	}{
		{Ready, "ready"},
		{Drain, "drain"},
		{Maint, "maint"},
	}
	for _, tc := range tests {
		if got := tc.state.String(); got != tc.name {
			t.Errorf("%d.String() = %q, want %q", tc.state, got, tc.name)
		}
		got, err := ParseState(tc.name)
		if err != nil || got != tc.state {
			t.Errorf("ParseState(%q) = %v, %v; want %v", tc.name, got, err, tc.state)
		}
	}
	if got := State(9).String(); got != "state(9)" {
		t.Errorf("State(9).String() = %q", got)
	}
	if _, err := ParseState("Ready"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseState(Ready) = %v, want ErrInvalid", err)
	}
	b := mustNew(t, spec(0))
	if err := b.SetState(State(3)); !errors.Is(err, ErrInvalid) || b.State() != Ready {
		t.Errorf("SetState(3) = %v leaving %v; want ErrInvalid leaving ready", err, b.State())
	}
}
