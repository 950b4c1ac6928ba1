package l4

import (
	"fmt"
	"testing"

	"github.com/splicerlb/splicer/pkg/backend"
)

// Every value of the data plane's enums has a name of its own, which logs,
// stats and metrics use; a value past the last names itself with its
// number rather than panicking or passing for another.
func TestEnumNames(t *testing.T) {
	enums := []struct {
		kind string
		n    int
		name func(i int) string
	}{
		{"cause", NumCauses, func(i int) string { return Cause(i).String() }},
		{"try", numTryResults, func(i int) string { return TryResult(i).String() }},
		{"state", len(stateNames), func(i int) string { return connState(i).String() }},
		{"pump", len(pumpNames), func(i int) string { return pumpResult(i).String() }},
		{"drop", NumDropReasons, func(i int) string { return DropReason(i).String() }},
	}
	for _, e := range enums {
		seen := map[string]int{}
		for i := 0; i < e.n; i++ {
			name := e.name(i)
			if name == "" {
				t.Errorf("%s %d has no name", e.kind, i)
			}
			if j, dup := seen[name]; dup {
				t.Errorf("%s %d and %d are both %q", e.kind, j, i, name)
			}
			seen[name] = i
		}
		want := fmt.Sprintf("%s(%d)", e.kind, e.n)
		if e.kind == "drop" {
			want = "unknown"
		}
		if got := e.name(e.n); got != want {
			t.Errorf("%s past the last: %q, want %q", e.kind, got, want)
		}
	}
	if got := pumpResult(pumpDstFailed).String(); got != "dst failed" {
		t.Errorf("pumpDstFailed is %q", got)
	}
}

// A failed connect try is logged under the reason the backend's counters
// count it under.
func TestTryResultOfFailure(t *testing.T) {
	for reason, want := range map[backend.FailReason]TryResult{
		backend.FailRefused:     TryRefused,
		backend.FailTimeout:     TryTimeout,
		backend.FailUnreachable: TryUnreachable,
		backend.FailReset:       TryReset,
		backend.FailOther:       TryOther,
	} {
		if got := tryResult(reason); got != want {
			t.Errorf("failure %v: try %v, want %v", reason, got, want)
		}
	}
}
