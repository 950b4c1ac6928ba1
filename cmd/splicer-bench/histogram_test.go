package main

import (
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	// Every value maps to a bucket whose lower bound is at most the value
	// and within 1/64 of it, and the next bucket starts above the value.
	values := []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 4095, 4096, 123_456_789, 1 << 40, 1<<63 - 1, 1 << 63, ^uint64(0)}
	for _, v := range values {
		b := bucketOf(v)
		if b < 0 || b >= bucketCount {
			t.Fatalf("bucketOf(%d) = %d, out of [0,%d)", v, b, bucketCount)
		}
		lo := lowerBound(b)
		if lo > v || float64(v-lo) > float64(v)/subBuckets {
			t.Errorf("value %d: bucket %d lower bound %d not within 1/%d below it", v, b, lo, subBuckets)
		}
		if b+1 < bucketCount && lowerBound(b+1) <= v {
			t.Errorf("value %d: next bucket %d starts at %d, not above it", v, b+1, lowerBound(b+1))
		}
		if bucketOf(lo) != b {
			t.Errorf("bucketOf(lowerBound(%d)) = %d", b, bucketOf(lo))
		}
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single", []time.Duration{40}, 99, 40},
		{"median of 1..10", seq(1, 10), 50, 5},
		{"p99 of 1..10", seq(1, 10), 99, 10},
		{"p100 of 1..10", seq(1, 10), 100, 10},
		{"p10 of 1..10", seq(1, 10), 10, 1},
		{"p99 of 1..100", seq(1, 100), 99, 99},
		{"negative counts as zero", []time.Duration{-5, 7}, 50, 0},
		// Between 512 and 1024 ns buckets are 8 ns wide: 1007 is in [1000, 1008).
		{"large value rounds down to its bucket", []time.Duration{1007}, 50, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.record(v)
			}
			if got := h.percentile(tt.p); got != tt.want {
				t.Fatalf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b histogram
	for _, v := range seq(1, 50) {
		a.record(v)
	}
	for _, v := range seq(51, 100) {
		b.record(v)
	}
	a.merge(&b)
	if a.total != 100 {
		t.Fatalf("total = %d, want 100", a.total)
	}
	if got := a.percentile(50); got != 50 {
		t.Fatalf("merged p50 = %v, want 50ns", got)
	}
}

// seq returns the durations from..to nanoseconds.
func seq(from, to time.Duration) []time.Duration {
	var s []time.Duration
	for v := from; v <= to; v++ {
		s = append(s, v)
	}
	return s
}
