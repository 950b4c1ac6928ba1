package health

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/backend"
)

// benchScheduler returns a Scheduler over one backend with passive_fall
// set high enough that benchmarks never reach it, and that backend.
func benchScheduler(b *testing.B) (*Scheduler, *backend.Backend) {
	be, err := backend.New(backend.Spec{Address: netip.MustParseAddrPort("127.0.0.1:1"), Weight: 1})
	if err != nil {
		b.Fatal(err)
	}
	h := fastHealth(time.Hour)
	h.PassiveFall = 100
	s, err := New(h, checkerFunc(func(context.Context, netip.AddrPort) Result { return Result{} }),
		[]*backend.Backend{be}, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	return s, be
}

// BenchmarkReportFailure is the data plane's cost per failed connect: a
// failure below passive_fall, then the success that ends the streak.
func BenchmarkReportFailure(b *testing.B) {
	s, be := benchScheduler(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.ReportFailure(be, "connect: connection refused")
			s.ReportSuccess(be)
		}
	})
}

// BenchmarkReportSuccess is the data plane's cost per completed connect
// with no failure streak to end.
func BenchmarkReportSuccess(b *testing.B) {
	s, be := benchScheduler(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.ReportSuccess(be)
		}
	})
}

// BenchmarkState is a stats scrape of one backend.
func BenchmarkState(b *testing.B) {
	s, be := benchScheduler(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.State(be); !ok {
			b.Fatal("unknown backend")
		}
	}
}
