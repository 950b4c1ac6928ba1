package balance

import (
	"errors"
	"slices"
	"testing"

	"github.com/splicerlb/splicer/pkg/backend"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr error
	}{
		{name: RoundRobin},
		{name: LeastConn},
		{name: P2C},
		{name: Maglev},
		{name: Maglev, opts: Options{MaglevTableSize: 251}},
		{name: Maglev, opts: Options{MaglevTableSize: 65536}, wantErr: ErrInvalidOptions},
		{name: Maglev, opts: Options{MaglevTableSize: 1}, wantErr: ErrInvalidOptions},
		{name: Maglev, opts: Options{MaglevTableSize: -7}, wantErr: ErrInvalidOptions},
		{name: Maglev, opts: Options{MaglevTableSize: 16777259}, wantErr: ErrInvalidOptions}, // prime, too big
		{name: "random", wantErr: ErrUnknownStrategy},
		{name: "", wantErr: ErrUnknownStrategy},
	}
	for _, tc := range tests {
		s, err := New(tc.name, tc.opts)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) || s != nil {
				t.Errorf("New(%q, %+v) = %v, %v; want %v", tc.name, tc.opts, s, err, tc.wantErr)
			}
			continue
		}
		if err != nil || s.Name() != tc.name {
			t.Errorf("New(%q, %+v) = %v, %v", tc.name, tc.opts, s, err)
		}
	}
	if got := Names(); !slices.Equal(got, []string{"roundrobin", "leastconn", "p2c", "maglev"}) {
		t.Errorf("Names() = %v", got)
	}
}

func TestPickEmpty(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			strat := mustStrategy(t, name, Options{})
			bs := newBackends(t, 1, 1)
			s := mustSet(t, bs, strat, 0)
			for _, b := range bs {
				b.SetHealthy(false)
			}
			if b := strat.Pick(s.Load(), 42); b != nil {
				t.Fatalf("Pick on an empty snapshot = %s", b.Name())
			}
		})
	}
}

// TestPickForeignSnapshot checks the strategies that need prepared data
// refuse a snapshot some other Preparer built instead of misreading it.
func TestPickForeignSnapshot(t *testing.T) {
	for _, name := range []string{RoundRobin, Maglev} {
		s := mustSet(t, newBackends(t, 1, 1), nil, 0)
		if b := mustStrategy(t, name, Options{}).Pick(s.Load(), 42); b != nil {
			t.Errorf("%s: Pick on an unprepared snapshot = %s, want nil", name, b.Name())
		}
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			strat := mustStrategy(t, name, Options{})
			s := mustSet(t, newBackends(t, 1, 2, 3, 4), strat, 0)
			key := uint64(0)
			allocs := testing.AllocsPerRun(1000, func() {
				key++
				if strat.Pick(s.Load(), key) == nil {
					t.Fatal("Pick returned nil")
				}
			})
			if allocs != 0 {
				t.Fatalf("Pick allocates %v times per call", allocs)
			}
		})
	}
}

// TestStrategiesSkipUnavailable runs every strategy over a snapshot with one
// backend down: none may return it.
func TestStrategiesSkipUnavailable(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			strat := mustStrategy(t, name, Options{})
			bs := newBackends(t, 1, 1, 1)
			s := mustSet(t, bs, strat, 0)
			bs[1].SetHealthy(false)
			seen := map[*backend.Backend]int{}
			for key := range uint64(3000) {
				seen[strat.Pick(s.Load(), key)]++
			}
			if seen[bs[1]] != 0 || seen[bs[0]] == 0 || seen[bs[2]] == 0 || len(seen) != 2 {
				t.Fatalf("picks: b0 %d, b1 %d (down), b2 %d; others %d",
					seen[bs[0]], seen[bs[1]], seen[bs[2]], len(seen)-3)
			}
		})
	}
}
