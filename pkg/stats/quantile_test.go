package stats

import "testing"

func TestQuantile(t *testing.T) {
	// 10 connects: 4 at or below 1ms, 4 more at or below 2ms, 2 above 4ms.
	buckets := []Bucket{{0.001, 4}, {0.002, 8}, {0.004, 8}}
	tests := []struct {
		name    string
		buckets []Bucket
		count   uint64
		q       float64
		want    float64
	}{
		{"empty histogram", buckets[:0], 0, 0.5, 0},
		{"no observations", []Bucket{{0.001, 0}}, 0, 0.5, 0},
		{"q below range", buckets, 10, -0.1, 0},
		{"q above range", buckets, 10, 1.5, 0},
		{"first bucket interpolates from zero", buckets, 10, 0.2, 0.0005},
		{"rank on a bucket edge", buckets, 10, 0.4, 0.001},
		{"median inside second bucket", buckets, 10, 0.5, 0.00125},
		{"empty bucket is skipped", buckets, 10, 0.8, 0.002},
		{"beyond last bound", buckets, 10, 0.99, 0.004},
		{"q zero", buckets, 10, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Quantile(tc.buckets, tc.count, tc.q); got != tc.want {
				t.Errorf("Quantile(q=%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func BenchmarkQuantile(b *testing.B) {
	buckets := make([]Bucket, 16)
	for i := range buckets {
		buckets[i] = Bucket{UpperBound: float64(i+1) / 1000, Count: uint64(i+1) * 10}
	}
	b.ReportAllocs()
	for b.Loop() {
		Quantile(buckets, 170, 0.99)
	}
}
