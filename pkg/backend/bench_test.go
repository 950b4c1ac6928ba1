package backend

import (
	"testing"
	"time"
)

// The hot-path operations, one per op, serial and from GOMAXPROCS goroutines
// sharing one backend as event loops do.
func BenchmarkHotPath(b *testing.B) {
	sp := spec(0)
	sp.MaxConnections = 1 << 30 // capped, but never reached: no rebuilds
	bk := mustNew(b, sp)
	s := mustSet(b, []*Backend{bk}, nil, 0)
	ops := []struct {
		name string
		op   func()
	}{
		{"Load", func() {
			if s.Load() == nil {
				b.Error("nil snapshot")
			}
		}},
		{"TryAcquire+Release", func() {
			if bk.TryAcquire() {
				bk.Release()
			}
		}},
		{"AddBytes", func() { bk.AddBytes(1500, 64) }},
		{"ObserveConnect", func() { bk.ObserveConnect(3 * time.Millisecond) }},
	}
	for _, o := range ops {
		b.Run(o.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.op()
			}
		})
		b.Run(o.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					o.op()
				}
			})
		})
	}
}

// BenchmarkRebuild measures a health flap with no strategy data: the
// snapshot build alone, for 1024 backends.
func BenchmarkRebuild(b *testing.B) {
	var bs []*Backend
	for i := range 1024 {
		bs = append(bs, mustNew(b, spec(i)))
	}
	mustSet(b, bs, nil, 0)
	b.ReportAllocs()
	up := false
	for b.Loop() {
		bs[512].SetHealthy(up)
		up = !up
	}
}
