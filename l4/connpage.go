package l4

import (
	"cmp"
	"slices"
)

// connPage gathers one page of the connection list on a loop: of the
// connections offered, it keeps the limit with the lowest IDs above after,
// in a max-heap by ID, so a loop holding many connections copies at most a
// page of them and never sorts them all.
type connPage struct {
	after uint64
	limit int
	heap  []ConnInfo // heap[0] has the highest ID kept
}

// wants reports whether a connection with this ID would be kept; the caller
// builds the ConnInfo only then.
func (p *connPage) wants(id uint64) bool {
	return id > p.after && p.limit > 0 && (len(p.heap) < p.limit || id < p.heap[0].ID)
}

// add keeps c, dropping the highest ID when the page is full. Call it only
// when wants(c.ID).
func (p *connPage) add(c ConnInfo) {
	if len(p.heap) < p.limit {
		p.heap = append(p.heap, c)
		for i := len(p.heap) - 1; i > 0; {
			parent := (i - 1) / 2
			if p.heap[parent].ID >= p.heap[i].ID {
				break
			}
			p.heap[parent], p.heap[i] = p.heap[i], p.heap[parent]
			i = parent
		}
		return
	}
	p.heap[0] = c
	for i := 0; ; {
		largest := i
		for _, child := range []int{2*i + 1, 2*i + 2} {
			if child < len(p.heap) && p.heap[child].ID > p.heap[largest].ID {
				largest = child
			}
		}
		if largest == i {
			return
		}
		p.heap[i], p.heap[largest] = p.heap[largest], p.heap[i]
		i = largest
	}
}

// mergePages returns the limit lowest-ID entries of the loops' pages, in
// ID order.
func mergePages(pages [][]ConnInfo, limit int) []ConnInfo {
	var all []ConnInfo
	for _, p := range pages {
		all = append(all, p...)
	}
	slices.SortFunc(all, func(a, b ConnInfo) int { return cmp.Compare(a.ID, b.ID) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}
