package balance

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
)

// newBackends returns backends b0, b1, ... with the given weights.
func newBackends(t testing.TB, weights ...int) []*backend.Backend {
	t.Helper()
	bs := make([]*backend.Backend, len(weights))
	for i, w := range weights {
		b, err := backend.New(backend.Spec{
			Name:    fmt.Sprintf("b%d", i),
			Address: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 6379),
			Weight:  w,
		})
		if err != nil {
			t.Fatal(err)
		}
		bs[i] = b
	}
	return bs
}

// equalWeights returns n weights of 1.
func equalWeights(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

func mustStrategy(t testing.TB, name string, o Options) Strategy {
	t.Helper()
	s, err := New(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSet(t testing.TB, bs []*backend.Backend, p backend.Preparer, slowStart time.Duration) *backend.Set {
	t.Helper()
	s, err := backend.NewSet(bs, p, slowStart)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// indexOf maps the snapshot's backends to their positions in bs.
func indexOf(bs []*backend.Backend, b *backend.Backend) int {
	for i, x := range bs {
		if x == b {
			return i
		}
	}
	return -1
}
