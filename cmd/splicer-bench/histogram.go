package main

import (
	"math"
	"math/bits"
	"time"
)

// Log-linear buckets: values below subBuckets nanoseconds each get a bucket;
// above, every power of two is split into subBuckets equal buckets. A value
// is thus at most 1/subBuckets (1.6%) above its bucket's lower bound.
const (
	subBits     = 6
	subBuckets  = 1 << subBits
	bucketCount = (64 - subBits + 1) * subBuckets
)

// histogram counts latencies without allocating: recording is an index
// computation and an increment, cheap enough for every request of the
// request/response test. The zero value is empty and ready.
type histogram struct {
	counts [bucketCount]uint64
	total  uint64
}

// record counts one latency; negative durations count as zero.
func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.total++
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// percentile returns the lower bound of the bucket holding the p-th
// percentile (0 < p <= 100): the smallest recorded value v such that at
// least p% of the values are <= v, rounded down by at most 1.6%. It returns
// 0 for an empty histogram.
func (h *histogram) percentile(p float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(p/100*float64(h.total))), 1)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(lowerBound(b))
		}
	}
	return time.Duration(lowerBound(bucketCount - 1))
}

// bucketOf maps a value in nanoseconds to its bucket.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits // v is in [2^(shift+subBits), 2^(shift+subBits+1))
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// lowerBound is the smallest value that maps to bucket b.
func lowerBound(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	shift := b/subBuckets - 1
	return uint64(b%subBuckets+subBuckets) << shift
}
