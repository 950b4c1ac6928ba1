package stats

// Quantile estimates the q-quantile (0 <= q <= 1) of a histogram given as
// cumulative buckets in ascending order of bound plus the total count, which
// may exceed the last bucket's count by the observations above every bound.
// Like Prometheus' histogram_quantile it interpolates linearly inside the
// bucket that holds the rank, taking 0 as the lower edge of the first bucket.
// A rank beyond the last finite bound yields that bound, since nothing better
// is known. It returns 0 for an empty histogram or a q outside [0, 1], so the
// result is always a finite number that JSON can carry.
func Quantile(buckets []Bucket, count uint64, q float64) float64 {
	if count == 0 || len(buckets) == 0 || !(q >= 0 && q <= 1) {
		return 0
	}
	rank := q * float64(count)
	lower, below := 0.0, uint64(0)
	for _, b := range buckets {
		if float64(b.Count) >= rank && b.Count > below {
			inBucket := float64(b.Count - below)
			return lower + (b.UpperBound-lower)*(rank-float64(below))/inBucket
		}
		lower, below = b.UpperBound, b.Count
	}
	return buckets[len(buckets)-1].UpperBound
}
