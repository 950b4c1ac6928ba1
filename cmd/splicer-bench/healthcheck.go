package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The health-check cost test: one route to healthBackends listeners, every
// one checked with a TCP connect every healthInterval, and no traffic. It
// runs on the targets with active health checks (splicer, HAProxy).
const (
	healthBackends = 1000
	healthInterval = time.Second
)

// healthTest lets the checks run for one interval, so that every backend
// has been probed and the start-up work is over, then charges the proxy's
// CPU over -duration to the checks the interval schedules in that time.
func healthTest(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
	if err := sleepCtx(ctx, healthInterval); err != nil {
		return measurement{}, err
	}
	d := r.opts.duration
	cpu, charged, err := proxyCPU(in, func() error { return sleepCtx(ctx, d) })
	if err != nil {
		return measurement{}, err
	}
	if !charged {
		return measurement{}, errors.New("no proxy to charge")
	}
	checks := float64(healthBackends) * d.Seconds() / healthInterval.Seconds()
	return measurement{values: map[metric]float64{
		healthCores:       cpu.Seconds() / d.Seconds(),
		healthCPUPerCheck: micros(cpu) / checks,
	}}, nil
}

// sleepCtx waits for d, or returns ctx's error when it ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// startSink starts the health test's backends: one process listening on
// healthBackends loopback ports.
func (r *runner) startSink(ctx context.Context) error {
	ports, err := freePorts("tcp", healthBackends)
	if err != nil {
		return err
	}
	list := make([]string, len(ports))
	for i, p := range ports {
		list[i] = strconv.Itoa(p)
		r.back.checked = append(r.back.checked, loopback(p))
	}
	p, err := startProcess("health-check sink", []string{r.tools.self, "sink", "-ports", strings.Join(list, ",")}, nil)
	if err != nil {
		return err
	}
	if err := p.waitListening(ctx, startTimeout, "tcp", ports...); err != nil {
		p.stop()
		return p.failure(err)
	}
	r.sink = p
	return nil
}

// runSink is the hidden "sink -ports P1,P2,..." subcommand: it listens on
// each loopback port and closes every connection it accepts, as a server
// being health-checked with TCP connects sees them.
func runSink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	ports := fs.String("ports", "", "comma-separated loopback `ports` to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := untilSignal()
	defer stop()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for p := range strings.SplitSeq(*ports, ",") {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", p))
		if err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return errors.New("sink: no -ports")
	}
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errs <- acceptLoop(ctx, ln, func(c net.Conn) { c.Close() }) }()
	}
	for range lns {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}
