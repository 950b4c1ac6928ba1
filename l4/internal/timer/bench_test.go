package timer

import (
	"math/rand/v2"
	"testing"
	"time"
)

func BenchmarkScheduleStop(b *testing.B) {
	w := New(10*time.Millisecond, 4096, t0)
	var tm Timer
	b.ReportAllocs()
	for b.Loop() {
		w.Schedule(&tm, 30*time.Second)
		w.Stop(&tm)
	}
}

// BenchmarkReschedule is the idle-timeout pattern: every read pushes the
// armed timer's deadline back.
func BenchmarkReschedule(b *testing.B) {
	w := New(10*time.Millisecond, 4096, t0)
	var tm Timer
	w.Schedule(&tm, time.Hour)
	d := time.Hour
	b.ReportAllocs()
	for b.Loop() {
		d += time.Millisecond
		w.Schedule(&tm, d)
	}
}

// BenchmarkAdvance100k advances one 10ms tick per op with 100k timers
// armed for 1 to 60 s, each re-arming itself when it fires (as idle
// timeouts do), plus one Next per tick as the loop calls it.
func BenchmarkAdvance100k(b *testing.B) {
	const tick = 10 * time.Millisecond
	w := New(tick, 4096, t0)
	rng := rand.New(rand.NewPCG(3, 4))
	timers := make([]Timer, 100_000)
	for i := range timers {
		d := time.Second + time.Duration(rng.Int64N(int64(59*time.Second)))
		timers[i].Fire = func() { w.Schedule(&timers[i], d) }
		w.Schedule(&timers[i], d)
	}
	now := t0
	fired := 0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(tick)
		fired += w.Advance(now)
		w.Next(now)
	}
	b.ReportMetric(float64(fired)/float64(b.N), "fired/op")
}

// BenchmarkAdvanceAfterHour is one Advance after the loop slept an hour
// (360000 ticks) with 100k timers armed: the work is one revolution of
// slots, not one visit per elapsed tick.
func BenchmarkAdvanceAfterHour(b *testing.B) {
	const tick = 10 * time.Millisecond
	w := New(tick, 4096, t0)
	timers := make([]Timer, 100_000)
	for i := range timers {
		w.Schedule(&timers[i], 2*time.Hour+time.Duration(i)*time.Millisecond)
	}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Hour)
		w.Advance(now)
		// Keep them armed and not yet due, whatever b.N is.
		b.StopTimer()
		for i := range timers {
			w.Schedule(&timers[i], 2*time.Hour+time.Duration(i)*time.Millisecond)
		}
		b.StartTimer()
	}
}
