package backend

import (
	"sync/atomic"
	"time"
)

// NumConnectBounds is the number of finite upper bounds of the connect-time
// histogram; see ConnectBounds.
const NumConnectBounds = 16

// connectBounds follows Prometheus' 1-2.5-5 progression from 100µs, a fast
// LAN connect, to 10s, beyond any sane connect_timeout.
var connectBounds = [NumConnectBounds]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// ConnectBounds returns the upper bounds (inclusive, ascending) of the
// connect-time histogram buckets, as a copy.
func ConnectBounds() [NumConnectBounds]time.Duration { return connectBounds }

// connectHistogram counts connect times in fixed buckets with atomics only.
// It keeps no separate count: the count is the sum of the buckets, so a
// reader can never see a count that disagrees with them.
type connectHistogram struct {
	buckets [NumConnectBounds + 1]atomic.Uint64 // last: above every bound
	sumNS   atomic.Uint64
}

func (h *connectHistogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < NumConnectBounds && d > connectBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNS.Add(uint64(d))
}

// ConnectTimes is a point-in-time copy of a backend's connect-time
// histogram.
type ConnectTimes struct {
	// Buckets[i] counts connects that took at most ConnectBounds()[i] and
	// more than the bound before it; Buckets[NumConnectBounds] counts those
	// above the last bound. The buckets are not cumulative.
	Buckets [NumConnectBounds + 1]uint64
	// Sum is the total time of all counted connects.
	Sum time.Duration
}

// Count returns the number of connects observed.
func (c ConnectTimes) Count() uint64 {
	var n uint64
	for _, v := range c.Buckets {
		n += v
	}
	return n
}

func (h *connectHistogram) read() ConnectTimes {
	var c ConnectTimes
	for i := range h.buckets {
		c.Buckets[i] = h.buckets[i].Load()
	}
	c.Sum = time.Duration(h.sumNS.Load())
	return c
}
