package history

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
)

var (
	t0     = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	bounds = []float64{0.001, 0.01, 0.1}
	fe     = Key{Frontend: "pg"}
	beA    = Key{Frontend: "pg", Backend: "a"}
	beB    = Key{Frontend: "pg", Backend: "b"}
)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// TestRatesFromCounters feeds cumulative counters a second apart (and
// once two seconds apart) and checks every column to the unit.
func TestRatesFromCounters(t *testing.T) {
	r := New(600, bounds)
	r.Record(at(0), []Reading{
		{Key: fe, Protocol: "tcp", Total: 100, BytesIn: 1000, BytesOut: 5000, Active: 3, Queued: 1, Connect: []uint64{0, 0, 0, 0}},
		{Key: beA, Total: 100, Errors: [MaxErrorKinds]uint64{2, 0, 0, 0, 0, 1}, Connect: []uint64{0, 0, 0, 0}},
	})
	if h, _ := r.History("", 600); len(h.Times) != 0 || h.Frontends[0].Series.Len() != 0 {
		t.Fatalf("one reading is a baseline, not a sample: %+v", h)
	}
	r.Record(at(1), []Reading{
		{Key: fe, Protocol: "tcp", Total: 110, BytesIn: 3000, BytesOut: 5000, Active: 5, Queued: 0, Connect: []uint64{6, 4, 0, 0}},
		{Key: beA, Total: 110, Errors: [MaxErrorKinds]uint64{5, 0, 0, 0, 0, 1}, Active: 5, Connect: []uint64{6, 4, 0, 0}},
	})
	r.Record(at(3), []Reading{
		{Key: fe, Protocol: "tcp", Total: 130, BytesIn: 3000, BytesOut: 7000, Active: 2, Queued: 4, Connect: []uint64{6, 4, 0, 0}},
		{Key: beA, Total: 130, Errors: [MaxErrorKinds]uint64{5, 0, 0, 0, 0, 3}, Active: 2, Connect: []uint64{6, 4, 0, 0}},
	})
	h, ok := r.History("pg", 600)
	if !ok || h.Interval != 1 || len(h.Times) != 2 || h.Times[0] != at(1).UnixMilli() || h.Times[1] != at(3).UnixMilli() ||
		h.From != at(0).UnixMilli() {
		t.Fatalf("history %v: from %v times %v", ok, h.From, h.Times)
	}
	f := h.Frontends[0]
	if f.Name != "pg" || f.Protocol != "tcp" || f.Series.Start != 0 {
		t.Errorf("frontend %q %q start %d", f.Name, f.Protocol, f.Series.Start)
	}
	eq(t, "conns", f.Series.Conns, 10, 10)
	eq(t, "bytes in", f.Series.BytesIn, 2000, 0)
	eq(t, "bytes out", f.Series.BytesOut, 0, 1000)
	eq(t, "active", f.Series.Active, 5, 2)
	eq(t, "queued", f.Series.Queued, 0, 4)
	// 10 connects: 6 at most 1ms, 4 at most 10ms. The median is the 5th,
	// inside the first bucket; the 99th percentile in the second.
	eq(t, "p50", f.Series.ConnectP50, 0.001*5/6, nan)
	eq(t, "p99", f.Series.ConnectP99, 0.001+0.009*(9.9-6)/4, nan)
	if len(f.Series.Errors) != len(stats.FrontendErrorKinds("tcp")) {
		t.Errorf("frontend error kinds %v", f.Series.Errors)
	}
	b := f.Backends[0]
	if len(f.Backends) != 1 || b.Name != "a" || len(b.Series.Errors) != len(stats.BackendErrorKinds()) {
		t.Fatalf("backends %+v", f.Backends)
	}
	eq(t, "refused", b.Series.Errors["refused"], 3, 0)
	eq(t, "broken", b.Series.Errors["broken"], 0, 1)
	eq(t, "timeout", b.Series.Errors["timeout"], 0, 0)

	rates, ok := r.Rates(beA)
	want := stats.Rates{Window: 2,
		Now:  stats.Point{Conns: 10, Active: 2, Errors: 1},
		Peak: stats.Point{Conns: 10, Active: 5, Errors: 3, ConnectP50: f32(0.001 * 5 / 6), ConnectP99: f32(0.001 + 0.009*(9.9-6)/4)},
	}
	if !ok || *rates != want {
		t.Errorf("rates %+v, want %+v", rates, want)
	}
	if _, ok := r.Rates(Key{Frontend: "nope"}); ok {
		t.Error("rates of an unknown series")
	}
	if _, ok := r.History("nope", 10); ok {
		t.Error("history of an unknown frontend")
	}
}

var nan = math.NaN()

func f32(v float64) float64 { return float64(float32(v)) }

// eq compares a column with want, at float32 precision; NaN equals NaN.
func eq(t *testing.T, name string, got stats.Column, want ...float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %v, want %v", name, got, want)
		return
	}
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(w) != math.IsNaN(g) || !math.IsNaN(w) && float32(g) != float32(w) {
			t.Errorf("%s[%d] = %v, want %v (all %v)", name, i, g, w, got)
		}
	}
}

// TestReadingsReused records the same readings, updated in place between
// samples, as a caller may: the history keeps copies, not the caller's
// memory.
func TestReadingsReused(t *testing.T) {
	r := New(600, bounds)
	rd := []Reading{{Key: fe, Protocol: "tcp", Connect: []uint64{0, 0, 0, 0}}}
	for i := 0; i < 3; i++ {
		r.Record(at(float64(i)), rd)
		rd[0].Total += 5
		rd[0].Connect[0] += 5
	}
	h, _ := r.History("pg", 600)
	eq(t, "conns", h.Frontends[0].Series.Conns, 5, 5)
	eq(t, "p50", h.Frontends[0].Series.ConnectP50, 0.0005, 0.0005)
}

// TestUDPFrontendErrors: a UDP frontend refuses nothing, it drops; its one
// error kind is "dropped".
func TestUDPFrontendErrors(t *testing.T) {
	r := New(600, nil)
	dns := Key{Frontend: "dns"}
	r.Record(at(0), []Reading{{Key: dns, Protocol: "udp", Errors: [MaxErrorKinds]uint64{4}}})
	r.Record(at(1), []Reading{{Key: dns, Protocol: "udp", Errors: [MaxErrorKinds]uint64{10}}})
	h, _ := r.History("dns", 600)
	if f := h.Frontends[0]; f.Protocol != "udp" || len(f.Series.Errors) != 1 {
		t.Fatalf("udp frontend %+v", f)
	}
	eq(t, "dropped", h.Frontends[0].Series.Errors["dropped"], 6)
}

// TestRingWrapsAndWindows records more samples than the ring holds: only
// the last ones remain, in order, and seconds= picks the newest.
func TestRingWrapsAndWindows(t *testing.T) {
	r := New(5, nil)
	for i := 0; i <= 8; i++ {
		r.Record(at(float64(i)), []Reading{{Key: fe, Total: uint64(i * i)}})
	}
	h, _ := r.History("", 600)
	if len(h.Times) != 5 || h.Times[0] != at(4).UnixMilli() || h.Times[4] != at(8).UnixMilli() || h.From != at(3).UnixMilli() {
		t.Fatalf("from %v times %v", h.From, h.Times)
	}
	eq(t, "conns", h.Frontends[0].Series.Conns, 7, 9, 11, 13, 15)
	h, _ = r.History("", 2)
	eq(t, "last 2", h.Frontends[0].Series.Conns, 13, 15)
	if h, _ = r.History("", 0); len(h.Times) != 0 || h.Frontends[0].Series.Len() != 0 {
		t.Errorf("0 seconds: %+v", h)
	}
	if h, _ = r.History("", -3); len(h.Times) != 0 {
		t.Errorf("negative seconds: %v", h.Times)
	}
}

// TestSeriesComeAndGo adds a backend after the start (its series is
// shorter, with Start saying where it begins), removes one (its series
// goes at once) and replaces one under the same name with counters that
// start again from zero (no negative rate).
func TestSeriesComeAndGo(t *testing.T) {
	r := New(600, nil)
	r.Record(at(0), []Reading{{Key: fe}, {Key: beA, Total: 50}})
	r.Record(at(1), []Reading{{Key: fe}, {Key: beA, Total: 60}})
	r.Record(at(2), []Reading{{Key: fe}, {Key: beA, Total: 70}, {Key: beB, Total: 5}})
	r.Record(at(3), []Reading{{Key: fe}, {Key: beA, Total: 4}, {Key: beB, Total: 8}})
	h, _ := r.History("pg", 600)
	bs := h.Frontends[0].Backends
	if len(h.Times) != 3 || len(bs) != 2 || bs[0].Name != "a" || bs[1].Name != "b" || bs[1].Series.Start != 2 {
		t.Fatalf("times %v backends %+v", h.Times, bs)
	}
	eq(t, "a", bs[0].Series.Conns, 10, 10, 4)
	eq(t, "b", bs[1].Series.Conns, 3)

	r.Record(at(4), []Reading{{Key: fe}, {Key: beB, Total: 9}})
	h, _ = r.History("pg", 600)
	if bs = h.Frontends[0].Backends; len(bs) != 1 || bs[0].Name != "b" {
		t.Errorf("removed backend still there: %+v", bs)
	}
	if r.Bytes() != 2*600*SampleBytes+601*8 {
		t.Errorf("Bytes %d with two series", r.Bytes())
	}
	// A clock that did not move adds nothing.
	r.Record(at(4), []Reading{{Key: fe}, {Key: beB, Total: 100}})
	if h, _ = r.History("pg", 600); len(h.Times) != 4 {
		t.Errorf("a sample at the same time was taken: %v", h.Times)
	}
}

// TestMemoryFigure pins the figure docs/operations.md gives: the memory of
// ten minutes of history for 100 backends behind 10 frontends.
func TestMemoryFigure(t *testing.T) {
	if SampleBytes != 52 {
		t.Fatalf("a sample is %d bytes; update docs/operations.md", SampleBytes)
	}
	r := New(stats.HistorySeconds, nil)
	var rd []Reading
	for f := 0; f < 10; f++ {
		name := string(rune('a' + f))
		rd = append(rd, Reading{Key: Key{Frontend: name}})
		for b := 0; b < 10; b++ {
			rd = append(rd, Reading{Key: Key{Frontend: name, Backend: string(rune('a' + b))}})
		}
	}
	r.Record(at(0), rd)
	if got := r.Bytes(); got != 110*600*52+601*8 {
		t.Errorf("Bytes %d", got)
	}
}

func TestColumnJSON(t *testing.T) {
	c := stats.Column{0, 0.1, 1234567, float32(math.NaN()), 2.5e-5}
	b, err := json.Marshal(c)
	if err != nil || string(b) != `[0,0.1,1234567,null,0.000025]` {
		t.Fatalf("%s %v", b, err)
	}
	var back stats.Column
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 5 || back[1] != 0.1 || !math.IsNaN(float64(back[3])) || back[4] != 2.5e-5 {
		t.Errorf("read back %v", back)
	}
	if b, _ := json.Marshal(stats.Column(nil)); string(b) != "[]" {
		t.Errorf("nil column: %s", b)
	}
	if _, err := json.Marshal(stats.Column{float32(math.Inf(1))}); err == nil {
		t.Error("infinity encoded")
	}
}

// BenchmarkRecord is one sample of 10 frontends with 10 backends each:
// the sampler's work once a second.
func BenchmarkRecord(b *testing.B) {
	r := New(stats.HistorySeconds, bounds)
	var rd []Reading
	for f := 0; f < 10; f++ {
		name := string(rune('a' + f))
		rd = append(rd, Reading{Key: Key{Frontend: name}, Connect: make([]uint64, 4)})
		for k := 0; k < 10; k++ {
			rd = append(rd, Reading{Key: Key{Frontend: name, Backend: string(rune('a' + k))}, Connect: make([]uint64, 4)})
		}
	}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		for i := range rd {
			rd[i].Total += 10
			rd[i].Connect[1] += 10
		}
		r.Record(now, rd)
	}
}
