package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// How cost grows with the number of connections: the same offered request
// rate spread over 16, 256 and 4096 connections, and the idle cost per
// connection at 1000 held beside the idle test's 8000.
const (
	// growthRate is the total request rate offered at every connection
	// count: low enough that every target keeps up on two shared cores, so
	// the rows compare the CPU each request costs, not who saturates first.
	growthRate = 5000
	// idleFew is the smaller idle count; the idle test's -idle is the
	// larger.
	idleFew = 1000
)

// growthDuration is how long each paced test offers load: half of
// -duration, at least 2 s, so that three connection counts fit the budget
// of one test.
func growthDuration(d time.Duration) time.Duration { return max(2*time.Second, d/2) }

// pacedTest measures the proxy's CPU per request with conns connections
// sharing growthRate requests per second. The connections are opened, and
// have echoed once, before the CPU is sampled: the row is the cost of a
// request, not of a connect. A target whose fd limit cannot hold conns
// connections (the io.Copy proxy at 4096) has no value for the row.
func pacedTest(conns int, cpuPerReq metric) func(context.Context, *runner, *target, *instance) (measurement, error) {
	return func(ctx context.Context, r *runner, t *target, in *instance) (measurement, error) {
		if t.maxIdle > 0 && conns > t.maxIdle {
			return measurement{}, fmt.Errorf("%w: %d connections exceed its cap of %d", errNotApplicable, conns, t.maxIdle)
		}
		set := holdIdle(ctx, in.echoAddr, conns)
		defer set.close()
		if set.held < conns {
			return measurement{}, fmt.Errorf("opened %d of %d connections: %w", set.held, conns, set.err)
		}
		d := growthDuration(r.opts.duration)
		var res loadResult
		cpu, charged, err := proxyCPU(in, func() error {
			res = paced(ctx, set.conns, growthRate, d)
			if res.errors > 0 {
				return fmt.Errorf("%d of %d connections failed: %w", res.errors, conns, res.err)
			}
			return nil
		})
		if err != nil {
			return measurement{}, err
		}
		if res.ops == 0 {
			return measurement{}, errors.New("no request completed")
		}
		m := measurement{values: map[metric]float64{}}
		if charged {
			m.values[cpuPerReq] = micros(cpu) / float64(res.ops)
		}
		if got := res.rate(); got < 0.9*growthRate {
			m.note = fmt.Sprintf("%d connections carried %.0f req/s of the %d offered (request latency p99 %v, p99.9 %v)",
				conns, got, growthRate, res.hist.percentile(99), res.hist.percentile(99.9))
		}
		return m, nil
	}
}

// paced sends messageSize-byte requests on every connection of cs, each
// connection at rate/len(cs) per second on its own schedule, the schedules
// staggered evenly over one interval, for d. The schedule is kept: a
// connection that falls behind (a late wake-up, a slow echo) sends its
// late requests back to back until it is on time again, so the offered
// rate is carried whenever the proxy can carry it.
func paced(ctx context.Context, cs []net.Conn, rate int, d time.Duration) loadResult {
	interval := time.Duration(float64(time.Second) * float64(len(cs)) / float64(rate))
	start := time.Now()
	end := start.Add(d)
	for _, c := range cs {
		c.SetDeadline(end.Add(opTimeout))
	}
	results := make([]workerResult, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		first := start.Add(interval * time.Duration(i) / time.Duration(len(cs)))
		wg.Go(func() { pacedWorker(ctx, c, first, interval, end, &results[i]) })
	}
	wg.Wait()
	return collect(results, time.Since(start), true)
}

// pacedWorker sends one request at first and then every interval until
// end; after a failure the connection is unusable, so the worker stops.
func pacedWorker(ctx context.Context, c net.Conn, next time.Time, interval time.Duration, end time.Time, res *workerResult) {
	out := bytes.Repeat([]byte{'p'}, messageSize)
	in := make([]byte, messageSize)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for next.Before(end) {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		t0 := time.Now()
		if err := echo(c, out, in); err != nil {
			res.errors++
			res.err = err
			return
		}
		res.hist.record(time.Since(t0))
		res.ops++
		next = next.Add(interval)
		timer.Reset(time.Until(next))
	}
}

// idle1kTest holds idleFew connections: with the idle test's larger count,
// it shows whether the cost per idle connection stays flat.
func idle1kTest(ctx context.Context, _ *runner, _ *target, in *instance) (measurement, error) {
	m, err := holdAndMeasure(ctx, in, idleFew)
	if err != nil {
		return m, err
	}
	out := measurement{values: map[metric]float64{}, note: m.note}
	if v, ok := m.values[idleRSS]; ok {
		out.values[idle1kRSS] = v
	}
	out.values[idle1kKernel] = m.values[idleKernel]
	return out, nil
}
