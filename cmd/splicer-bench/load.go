package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// messageSize is the payload of the connection-rate and
	// request/response tests.
	messageSize = 64
	// opTimeout bounds every connect and echo of the load generator, so a
	// stalled proxy ends a worker instead of hanging the run.
	opTimeout = 5 * time.Second
	// idleParallel is how many idle connections are being opened at once:
	// enough to be quick, few enough not to overflow a listen backlog.
	idleParallel = 64
)

// errEchoMismatch reports an echo that came back different from what was
// sent: a proxy that corrupts or mixes streams.
var errEchoMismatch = errors.New("echo mismatch")

// loadResult is the outcome of a timed load test.
type loadResult struct {
	ops     int           // completed connections or requests
	errors  int           // failed ones
	lost    int           // UDP requests left without a reply (udpLossTimeout)
	err     error         // the first failure, nil when errors == 0
	elapsed time.Duration // from start until the last worker stopped
	hist    *histogram    // request latencies (request/response test only)
}

// rate is ops per second of elapsed time.
func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// workerResult is one worker's share of a loadResult; each worker owns its
// own, so the hot loops share no counters.
type workerResult struct {
	ops, errors, lost int
	err               error
	hist              histogram
}

// collect sums the workers' results.
func collect(ws []workerResult, elapsed time.Duration, withHist bool) loadResult {
	r := loadResult{elapsed: elapsed}
	if withHist {
		r.hist = new(histogram)
	}
	for i := range ws {
		w := &ws[i]
		r.ops += w.ops
		r.errors += w.errors
		r.lost += w.lost
		if r.err == nil {
			r.err = w.err
		}
		if withHist {
			r.hist.merge(&w.hist)
		}
	}
	return r
}

// connectionRate runs workers that each, until d has passed, connect to
// addr, send messageSize bytes, read them back and close.
func connectionRate(ctx context.Context, addr string, workers int, d time.Duration) loadResult {
	start := time.Now()
	end := start.Add(d)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	results := make([]workerResult, workers)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { connectionRateWorker(ctx, end, addr, &results[i]) })
	}
	wg.Wait()
	return collect(results, time.Since(start), false)
}

// over reports whether a timed test has ended. It looks at the clock as
// well as ctx because a dial fails at its deadline a moment before the
// context's timer marks ctx done, and that failure is the test ending, not
// a failed connection.
func over(ctx context.Context, end time.Time) bool {
	return ctx.Err() != nil || !time.Now().Before(end)
}

// connectionRateWorker loops until the test ends; a failed connection is
// counted and the loop goes on, so one refused connect does not end the
// test.
func connectionRateWorker(ctx context.Context, end time.Time, addr string, res *workerResult) {
	out := bytes.Repeat([]byte{'c'}, messageSize)
	in := make([]byte, messageSize)
	dialer := net.Dialer{Timeout: opTimeout}
	for !over(ctx, end) {
		err := echoOnce(ctx, &dialer, addr, out, in)
		switch {
		case err == nil:
			res.ops++
		case over(ctx, end):
			return // the test ended mid-connection: neither success nor failure
		default:
			res.errors++
			if res.err == nil {
				res.err = err
			}
		}
	}
}

// echoOnce makes one connection, echoes out through it and closes it.
func echoOnce(ctx context.Context, dialer *net.Dialer, addr string, out, in []byte) error {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(opTimeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	return echo(c, out, in)
}

// echo writes out and reads len(out) bytes back into in.
func echo(c net.Conn, out, in []byte) error {
	if _, err := c.Write(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if _, err := io.ReadFull(c, in); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(in, out) {
		return errEchoMismatch
	}
	return nil
}

// requestResponse opens conns connections to addr and, on each, sends
// messageSize-byte requests one after the other for d, timing each round
// trip.
func requestResponse(ctx context.Context, addr string, conns int, d time.Duration) (loadResult, error) {
	cs := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	dialer := net.Dialer{Timeout: opTimeout}
	for range conns {
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return loadResult{}, fmt.Errorf("connect: %w", err)
		}
		cs = append(cs, c)
	}
	start := time.Now()
	end := start.Add(d)
	// One deadline for the whole test rather than one per request: it
	// bounds a stall without a timer update in the measured loop.
	for _, c := range cs {
		if err := c.SetDeadline(end.Add(opTimeout)); err != nil {
			return loadResult{}, fmt.Errorf("set deadline: %w", err)
		}
	}
	results := make([]workerResult, conns)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { requestResponseWorker(ctx, end, c, &results[i]) })
	}
	wg.Wait()
	return collect(results, time.Since(start), true), nil
}

// requestResponseWorker ping-pongs on c until the test ends or c fails;
// after a failure the connection is unusable, so the worker stops.
func requestResponseWorker(ctx context.Context, end time.Time, c net.Conn, res *workerResult) {
	out := bytes.Repeat([]byte{'r'}, messageSize)
	in := make([]byte, messageSize)
	for !over(ctx, end) {
		t0 := time.Now()
		if err := echo(c, out, in); err != nil {
			res.errors++
			res.err = err
			return
		}
		res.hist.record(time.Since(t0))
		res.ops++
	}
}

// idleSet is a set of established, idle connections held open.
type idleSet struct {
	conns  []net.Conn // nil where opening failed
	held   int        // connections that echoed their byte
	errors int
	err    error // the first failure
}

// close closes every held connection.
func (s *idleSet) close() {
	for _, c := range s.conns {
		if c != nil {
			c.Close()
		}
	}
}

// holdIdle opens n connections to addr, idleParallel at a time, and echoes
// one byte through each, so every one is known to reach the backend before
// the proxy's memory is sampled. The caller closes the set.
func holdIdle(ctx context.Context, addr string, n int) *idleSet {
	set := &idleSet{conns: make([]net.Conn, n)}
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(idleParallel, n) {
		wg.Go(func() {
			dialer := net.Dialer{Timeout: opTimeout}
			in := make([]byte, 1)
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				set.conns[i], errs[i] = openIdle(ctx, &dialer, addr, in)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case err != nil:
			set.errors++
			if set.err == nil {
				set.err = err
			}
		case set.conns[i] != nil:
			set.held++
		}
	}
	return set
}

// openIdle opens one connection and echoes a byte through it.
func openIdle(ctx context.Context, dialer *net.Dialer, addr string, in []byte) (net.Conn, error) {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := c.SetDeadline(time.Now().Add(opTimeout)); err != nil {
		c.Close()
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	if err := echo(c, []byte{'i'}, in); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("clear deadline: %w", err)
	}
	return c, nil
}
