package history

import (
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/splicerlb/splicer/pkg/stats"
)

// MaxErrorKinds bounds the error kinds of one series: those of
// stats.FrontendErrorKinds and stats.BackendErrorKinds. Six keep a sample
// at 52 bytes, so that a ring of 600 fits the allocator's 32 KiB size
// class instead of taking 40 KiB of whole pages.
const MaxErrorKinds = 6

// Key names a series: a frontend (Backend "") or one of its backends.
type Key struct {
	Frontend, Backend string
}

// Reading is what the data plane's counters say of one frontend or
// backend at one instant. Counters are cumulative since they were made
// (they survive reloads that keep the frontend or backend); Active and
// Queued are levels.
type Reading struct {
	Key      Key
	Protocol string // frontends only: "tcp" or "udp", which decides the error kinds
	Total    uint64 // connections (flows) ever accepted or assigned
	BytesIn  uint64
	BytesOut uint64
	Active   int64
	Queued   int64
	// Errors counts errors by kind, in the order of
	// stats.FrontendErrorKinds or stats.BackendErrorKinds.
	Errors [MaxErrorKinds]uint64
	// Connect counts connects by the bucket of Recorder's bounds they fell
	// in (not cumulative); the last entry counts those above every bound.
	Connect []uint64
}

// point is one second of one series: 13 float32, SampleBytes bytes.
type point struct {
	conns, bytesIn, bytesOut float32
	active, queued           float32
	p50, p99                 float32 // NaN: no connect in the interval
	errors                   [MaxErrorKinds]float32
}

// SampleBytes is the memory of one sample of one series.
const SampleBytes = int(unsafe.Sizeof(point{}))

// series is the ring of one frontend or backend.
type series struct {
	protocol string
	kinds    int
	// first is the sample number of the first point; points before it
	// are not part of the series.
	first int64
	// seen is the sample number of the last reading; a series not read
	// at a sample is dropped at once.
	seen   int64
	prev   Reading
	points []point // len Recorder.size, indexed by sample number % size
}

// Recorder holds the rings. Its methods are safe for concurrent use: one
// goroutine records while the admin API reads.
type Recorder struct {
	size   int
	bounds []float64 // connect-time bucket bounds, seconds, ascending

	mu   sync.RWMutex
	n    int64 // samples taken; the next one is number n
	last time.Time
	// times holds the Unix ms of the last size+1 samples, indexed by
	// sample number % (size+1): one more than the points, for the start of
	// the oldest point's interval.
	times  []int64
	series map[Key]*series
	order  []Key // frontends in config order, each followed by its backends
	// scratch holds the connect buckets of one interval while Record
	// estimates its quantiles.
	scratch []stats.Bucket
}

// New returns a Recorder keeping the last seconds samples (at least 2) of
// each series. bounds are the upper bounds, in seconds, of the connect-time
// buckets of Reading.Connect.
func New(seconds int, bounds []float64) *Recorder {
	seconds = max(seconds, 2)
	return &Recorder{
		size:   seconds,
		bounds: slices.Clone(bounds),
		times:  make([]int64, seconds+1),
		series: make(map[Key]*series),
	}
}

// Seconds is how many samples each series keeps.
func (r *Recorder) Seconds() int { return r.size }

// Record takes one sample at now from readings, which list every frontend
// in order, each followed by its backends. The first reading of a series
// only sets its baseline: its first point is the next sample's. A series
// missing from readings is dropped, and a counter that went backwards (a
// backend replaced under the same name) restarts from the new value. A now
// not at least a millisecond after the previous sample's is ignored.
func (r *Recorder) Record(now time.Time, readings []Reading) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Rates are over whole milliseconds, the unit of the times served, so
	// that a rate times its interval gives back the count.
	ms := now.UnixMilli()
	if !r.last.IsZero() && ms <= r.last.UnixMilli() {
		return
	}
	dt := float64(ms-r.last.UnixMilli()) / 1000
	n := r.n
	slot := int(n % int64(r.size))
	r.order = r.order[:0]
	for i := range readings {
		rd := &readings[i]
		r.order = append(r.order, rd.Key)
		s := r.series[rd.Key]
		if s == nil {
			kinds := len(stats.FrontendErrorKinds(rd.Protocol))
			if rd.Key.Backend != "" {
				kinds = len(stats.BackendErrorKinds())
			}
			s = &series{protocol: rd.Protocol, kinds: kinds, first: n + 1, points: make([]point, r.size)}
			r.series[rd.Key] = s
		} else {
			// A series missing from a sample was dropped at that sample,
			// so s.prev is the previous sample's reading.
			s.points[slot] = r.rates(&s.prev, rd, dt)
		}
		s.seen = n
		s.protocol = rd.Protocol
		// The reading is the caller's: keep a copy of its histogram in
		// the series' own buffer.
		buf := s.prev.Connect
		s.prev = *rd
		s.prev.Connect = append(buf[:0], rd.Connect...)
	}
	for k, s := range r.series {
		if s.seen != n {
			delete(r.series, k)
		}
	}
	r.times[n%int64(r.size+1)] = ms
	r.last = now
	r.n++
}

// rates is the point between two readings dt seconds apart. Callers hold
// r.mu for writing.
func (r *Recorder) rates(prev, cur *Reading, dt float64) point {
	p := point{
		conns:    rate(prev.Total, cur.Total, dt),
		bytesIn:  rate(prev.BytesIn, cur.BytesIn, dt),
		bytesOut: rate(prev.BytesOut, cur.BytesOut, dt),
		active:   float32(cur.Active),
		queued:   float32(cur.Queued),
		p50:      float32(math.NaN()),
		p99:      float32(math.NaN()),
	}
	for i := range p.errors {
		p.errors[i] = rate(prev.Errors[i], cur.Errors[i], dt)
	}
	if len(cur.Connect) == len(r.bounds)+1 && len(prev.Connect) == len(cur.Connect) {
		buckets := r.scratch[:0]
		var cum uint64
		for i, bound := range r.bounds {
			cum += delta(prev.Connect[i], cur.Connect[i])
			buckets = append(buckets, stats.Bucket{UpperBound: bound, Count: cum})
		}
		r.scratch = buckets
		if count := cum + delta(prev.Connect[len(r.bounds)], cur.Connect[len(r.bounds)]); count > 0 {
			p.p50 = float32(stats.Quantile(buckets, count, 0.5))
			p.p99 = float32(stats.Quantile(buckets, count, 0.99))
		}
	}
	return p
}

// delta is how much a cumulative counter grew; a counter that went back
// was replaced, and its new value is what it counted since.
func delta(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

func rate(prev, cur uint64, dt float64) float32 { return float32(float64(delta(prev, cur)) / dt) }

// window returns the sample numbers [from, to) of the last seconds samples,
// clamped to what the rings hold. Sample 0 is left out: it is every first
// series' baseline, a point of none. Callers hold r.mu.
func (r *Recorder) window(seconds int) (from, to int64) {
	to = r.n
	from = min(max(to-int64(min(max(seconds, 0), r.size)), 1), to)
	return from, to
}

// History returns the last seconds samples of frontend (every frontend
// when ""), and whether that frontend has a history; seconds is clamped to
// 0..Seconds().
func (r *Recorder) History(frontend string, seconds int) (stats.History, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	from, to := r.window(seconds)
	h := stats.History{Interval: 1, Times: make([]int64, 0, to-from), Frontends: []stats.FrontendHistory{}}
	if from < to {
		h.From = r.times[(from-1)%int64(r.size+1)]
	}
	for i := from; i < to; i++ {
		h.Times = append(h.Times, r.times[i%int64(r.size+1)])
	}
	found := frontend == ""
	for _, k := range r.order {
		if frontend != "" && k.Frontend != frontend {
			continue
		}
		found = true
		s := r.series[k]
		if k.Backend == "" {
			h.Frontends = append(h.Frontends, stats.FrontendHistory{
				Name: k.Frontend, Protocol: s.protocol, Series: r.export(s, from, to, stats.FrontendErrorKinds(s.protocol)),
				Backends: []stats.BackendHistory{},
			})
			continue
		}
		if len(h.Frontends) == 0 {
			continue // a backend read before any frontend, against Record's contract
		}
		fe := &h.Frontends[len(h.Frontends)-1]
		fe.Backends = append(fe.Backends, stats.BackendHistory{Name: k.Backend, Series: r.export(s, from, to, stats.BackendErrorKinds())})
	}
	return h, found
}

// export copies s's points in [from, to) into columns.
func (r *Recorder) export(s *series, from, to int64, kinds []string) stats.Series {
	start := max(from, s.first)
	n := int(max(to-start, 0))
	out := stats.Series{
		Start:    int(start - from),
		Conns:    make(stats.Column, 0, n),
		BytesIn:  make(stats.Column, 0, n),
		BytesOut: make(stats.Column, 0, n),
		Active:   make(stats.Column, 0, n),
		Queued:   make(stats.Column, 0, n),
		Errors:   make(map[string]stats.Column, len(kinds)),
		// Connect quantiles: NaN where no connect was made.
		ConnectP50: make(stats.Column, 0, n),
		ConnectP99: make(stats.Column, 0, n),
	}
	errs := make([]stats.Column, len(kinds))
	for i := start; i < to; i++ {
		p := &s.points[i%int64(r.size)]
		out.Conns = append(out.Conns, p.conns)
		out.BytesIn = append(out.BytesIn, p.bytesIn)
		out.BytesOut = append(out.BytesOut, p.bytesOut)
		out.Active = append(out.Active, p.active)
		out.Queued = append(out.Queued, p.queued)
		out.ConnectP50 = append(out.ConnectP50, p.p50)
		out.ConnectP99 = append(out.ConnectP99, p.p99)
		for j := range kinds {
			errs[j] = append(errs[j], p.errors[j])
		}
	}
	for j, kind := range kinds {
		if errs[j] == nil {
			errs[j] = stats.Column{}
		}
		out.Errors[kind] = errs[j]
	}
	return out
}

// Rates returns the latest second of k and the peak of each figure over
// the whole window; false until k has a point.
func (r *Recorder) Rates(k Key) (*stats.Rates, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.series[k]
	if s == nil {
		return nil, false
	}
	from, to := r.window(r.size)
	from = max(from, s.first)
	if from >= to {
		return nil, false
	}
	out := &stats.Rates{Window: float64(to - from)}
	for i := from; i < to; i++ {
		p := &s.points[i%int64(r.size)]
		cur := pointOf(p, s.kinds)
		if i == to-1 {
			out.Now = cur
		}
		pk := &out.Peak
		pk.Conns = max(pk.Conns, cur.Conns)
		pk.BytesIn = max(pk.BytesIn, cur.BytesIn)
		pk.BytesOut = max(pk.BytesOut, cur.BytesOut)
		pk.Active = max(pk.Active, cur.Active)
		pk.Queued = max(pk.Queued, cur.Queued)
		pk.Errors = max(pk.Errors, cur.Errors)
		pk.ConnectP50 = max(pk.ConnectP50, cur.ConnectP50)
		pk.ConnectP99 = max(pk.ConnectP99, cur.ConnectP99)
	}
	return out, true
}

// pointOf converts a stored point, with NaN connect times as 0 and the
// errors summed.
func pointOf(p *point, kinds int) stats.Point {
	out := stats.Point{
		Conns: float64(p.conns), BytesIn: float64(p.bytesIn), BytesOut: float64(p.bytesOut),
		Active: float64(p.active), Queued: float64(p.queued),
	}
	for _, e := range p.errors[:kinds] {
		out.Errors += float64(e)
	}
	if !math.IsNaN(float64(p.p50)) {
		out.ConnectP50, out.ConnectP99 = float64(p.p50), float64(p.p99)
	}
	return out
}

// Bytes is the memory the rings hold now: the samples of every series and
// the timestamps.
func (r *Recorder) Bytes() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.series)*r.size*SampleBytes + (r.size+1)*8
}
