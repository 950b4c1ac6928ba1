package backend

import (
	"sync/atomic"
	"time"
)

// NumDurationBounds is the number of finite upper bounds of the duration
// histograms; see DurationBounds.
const NumDurationBounds = 16

// durationBounds follows Prometheus' 1-2.5-5 progression from 100µs, a
// fast LAN connect, to 10s, beyond any sane connect_timeout and the
// queue waits of a queue_timeout of that order.
var durationBounds = [NumDurationBounds]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// DurationBounds returns the upper bounds (inclusive, ascending) of the
// duration histograms' buckets, as a copy.
func DurationBounds() [NumDurationBounds]time.Duration { return durationBounds }

// Histogram counts durations (connect times, health check times, queue
// waits) in fixed buckets, DurationBounds, with atomics only: any
// goroutine may observe and read it at once. It keeps no separate count:
// the count is the sum of the buckets, so a reader can never see a count
// that disagrees with them. The zero value is ready to use.
type Histogram struct {
	buckets [NumDurationBounds + 1]atomic.Uint64 // last: above every bound
	sumNS   atomic.Uint64
}

// Observe counts one duration; a negative one counts as 0.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < NumDurationBounds && d > durationBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNS.Add(uint64(d))
}

// Durations is a point-in-time copy of a Histogram.
type Durations struct {
	// Buckets[i] counts durations of at most DurationBounds()[i] and more
	// than the bound before it; Buckets[NumDurationBounds] counts those
	// above the last bound. The buckets are not cumulative.
	Buckets [NumDurationBounds + 1]uint64
	// Sum is the total of all counted durations.
	Sum time.Duration
}

// Count returns the number of durations observed.
func (c Durations) Count() uint64 {
	var n uint64
	for _, v := range c.Buckets {
		n += v
	}
	return n
}

// Read copies the histogram.
func (h *Histogram) Read() Durations {
	var c Durations
	for i := range h.buckets {
		c.Buckets[i] = h.buckets[i].Load()
	}
	c.Sum = time.Duration(h.sumNS.Load())
	return c
}
