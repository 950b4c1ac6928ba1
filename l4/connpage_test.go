package l4

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestConnPage offers IDs in random order to pages of several loops and
// compares the merged page with sorting everything, for limits from 0 to
// past the number of connections and cursors inside and outside the range.
func TestConnPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		n := rng.IntN(300)
		ids := rng.Perm(1000)[:n]
		loops := 1 + rng.IntN(4)
		after := uint64(rng.IntN(1100))
		limit := rng.IntN(n + 5)

		pages := make([]connPage, loops)
		for i := range pages {
			pages[i] = connPage{after: after, limit: limit}
		}
		var want []uint64
		for i, id := range ids {
			p := &pages[i%loops]
			if p.wants(uint64(id)) {
				p.add(ConnInfo{ID: uint64(id)})
			}
			if uint64(id) > after {
				want = append(want, uint64(id))
			}
		}
		slices.Sort(want)
		want = want[:min(limit, len(want))]
		var heaps [][]ConnInfo
		for _, p := range pages {
			if len(p.heap) > limit {
				t.Fatalf("a loop kept %d entries for a limit of %d", len(p.heap), limit)
			}
			heaps = append(heaps, p.heap)
		}
		var got []uint64
		for _, c := range mergePages(heaps, limit) {
			got = append(got, c.ID)
		}
		if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Fatalf("round %d (n %d, loops %d, after %d, limit %d): got %v, want %v", round, n, loops, after, limit, got, want)
		}
	}
}

// BenchmarkConnPage is one loop holding 20000 connections asked for a page
// of 100: what GET /api/v1/connections costs each loop.
func BenchmarkConnPage(b *testing.B) {
	ids := rand.New(rand.NewPCG(3, 4)).Perm(20000)
	b.ReportAllocs()
	for b.Loop() {
		p := connPage{limit: 100}
		for _, id := range ids {
			if p.wants(uint64(id) + 1) {
				p.add(ConnInfo{ID: uint64(id) + 1})
			}
		}
		page := mergePages([][]ConnInfo{p.heap}, 100)
		if len(page) != 100 || !slices.IsSortedFunc(page, func(a, b ConnInfo) int { return cmp.Compare(a.ID, b.ID) }) {
			b.Fatal("bad page")
		}
	}
}
