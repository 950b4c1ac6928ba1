package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// runner runs the tests round by round. It owns the backend servers and the
// temporary directory; close stops and removes them.
type runner struct {
	tools   *tools
	opts    options
	tmp     string
	log     io.Writer // progress and failures, as they happen
	echo    *process  // nil, as are the others, when no test needs it
	echoPP2 *process  // the echo server that reads a PROXY header first
	iperf   *process
	udpEcho *process
	back    backends
}

// newRunner creates the temporary directory and starts the backends the
// selected suites need.
func newRunner(ctx context.Context, tl *tools, opts options, log io.Writer) (*runner, error) {
	tmp, err := os.MkdirTemp("", "splicer-bench-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	r := &runner{tools: tl, opts: opts, tmp: tmp, log: log}
	if err := r.startBackends(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// startBackends starts the echo servers (plain, and reading a PROXY header
// first) and iperf3 for the TCP suite, the UDP echo server for the UDP
// suite.
func (r *runner) startBackends(ctx context.Context) error {
	var err error
	if slices.Contains(r.opts.suites, suiteTCP) {
		if r.echo, r.back.echo, err = r.startServer(ctx, "echo server", suiteTCP, "echo"); err != nil {
			return err
		}
		if r.echoPP2, r.back.echoProxy, err = r.startServer(ctx, "PROXY echo server", suiteTCP, "echo", "-proxy"); err != nil {
			return err
		}
		if err := r.startIperf(ctx); err != nil {
			return err
		}
	}
	if slices.Contains(r.opts.suites, suiteUDP) {
		if r.udpEcho, r.back.udpEcho, err = r.startServer(ctx, "UDP echo server", suiteUDP, "udpecho"); err != nil {
			return err
		}
	}
	return nil
}

// startServer starts a server of this binary's hidden subcommand, with
// args after its -listen, on a fresh loopback port of suite s's network and returns it with its
// address. It runs in its own process so that the idle test's backend ends
// count against its fd limit, not the harness's, and its CPU against no
// one's.
func (r *runner) startServer(ctx context.Context, name string, s suite, subcommand string, args ...string) (*process, string, error) {
	ports, err := freePorts(string(s), 1)
	if err != nil {
		return nil, "", err
	}
	port := ports[0]
	p, err := startProcess(name, append([]string{r.tools.self, subcommand, "-listen", loopback(port)}, args...), nil)
	if err != nil {
		return nil, "", err
	}
	if err := p.waitListening(ctx, startTimeout, string(s), port); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, loopback(port), nil
}

// startIperf starts iperf3 -s on a fresh loopback port.
func (r *runner) startIperf(ctx context.Context) error {
	ports, err := freePorts(string(suiteTCP), 1)
	if err != nil {
		return err
	}
	port := ports[0]
	argv := []string{r.tools.iperf3, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(port)}
	p, err := startProcess("iperf3 server", argv, nil)
	if err != nil {
		return err
	}
	if err := p.waitListening(ctx, startTimeout, string(suiteTCP), port); err != nil {
		p.stop()
		return err
	}
	r.iperf, r.back.iperf = p, loopback(port)
	return nil
}

// restartIperf replaces the iperf3 server with a fresh one.
func (r *runner) restartIperf(ctx context.Context) error {
	r.iperf.stop()
	r.iperf = nil
	return r.startIperf(ctx)
}

// close stops the backends and removes the temporary directory.
func (r *runner) close() {
	for _, p := range []*process{r.iperf, r.echo, r.echoPP2, r.udpEcho} {
		if p != nil {
			p.stop()
		}
	}
	os.RemoveAll(r.tmp)
}

// run runs every test on every target that serves its suite for
// opts.rounds rounds. Within a round the targets take turns in an order
// rotated from test to test and round to round, so that slow drift of the
// machine spreads over all columns instead of favouring whichever runs
// first.
func (r *runner) run(ctx context.Context, tests []test, targets []*target, res *results) {
	for round := range r.opts.rounds {
		for i, tst := range tests {
			ts := slices.DeleteFunc(slices.Clone(targets), func(t *target) bool { return !tst.servedBy(t) })
			for j := range ts {
				if ctx.Err() != nil {
					return
				}
				t := ts[(j+round+i)%len(ts)]
				r.runOne(ctx, fmt.Sprintf("[round %d/%d] %s, %s:", round+1, r.opts.rounds, tst.name, t.name), tst, t, res)
			}
		}
	}
}

// runOne runs a test on a fresh instance of t and records the outcome. A
// target that fails to start once with a suite's routes is marked failed
// for that suite and not started with them again.
func (r *runner) runOne(ctx context.Context, prefix string, tst test, t *target, res *results) {
	key := startKey{t.name, tst.suite}
	if _, broken := res.failed[key]; broken {
		res.fail(t.name, tst.metrics)
		return
	}
	in, err := t.start(ctx, r.tmp, r.back, tst.suite, tst.logAll)
	if ctx.Err() != nil {
		if err == nil {
			in.stop()
		}
		return // interrupted
	}
	if err != nil {
		fmt.Fprintf(r.log, "%s failed to start: %v\n", prefix, err)
		res.failed[key] = err.Error()
		res.fail(t.name, tst.metrics)
		return
	}
	m, err := tst.run(ctx, r, t, in)
	if err != nil && in.proc != nil && in.proc.exited() {
		err = in.proc.failure(err) // the proxy died: its output says why
	}
	in.stop()
	if ctx.Err() != nil {
		return // interrupted: the test did not fail, it was cut short
	}
	if err != nil {
		fmt.Fprintf(r.log, "%s failed: %v\n", prefix, err)
		res.fail(t.name, tst.metrics)
		return
	}
	res.record(t.name, m.values)
	var vs []string
	for _, mt := range tst.metrics {
		if v, ok := m.values[mt]; ok {
			vs = append(vs, fmt.Sprintf("%s %s", mt.spec().label, mt.spec().format(v)))
		}
	}
	line := strings.Join(vs, "; ")
	if m.note != "" {
		res.notes = append(res.notes, fmt.Sprintf("%s %s", prefix, m.note))
		line += " (" + m.note + ")"
	}
	fmt.Fprintln(r.log, prefix, line)
}

// capacity opens n idle connections through a fresh instance of t (issue 3
// asks for 9000 through splicer within a 20000-fd limit) and describes the
// outcome in one line.
func (r *runner) capacity(ctx context.Context, t *target, n, fds int) string {
	what := fmt.Sprintf("capacity check, %d idle connections through %s", n, t.name)
	in, err := t.start(ctx, r.tmp, r.back, suiteTCP, false)
	if err != nil {
		return fmt.Sprintf("%s: failed to start: %s", what, firstLine(err.Error()))
	}
	defer in.stop()
	m, err := holdAndMeasure(ctx, in, n)
	if err != nil {
		return fmt.Sprintf("%s: failed: %v", what, err)
	}
	v := m.values
	out := fmt.Sprintf("%s (fd limit %d): %.0f held, each echoed one byte; %.2f fds and %.2f KiB RSS per connection",
		what, fds, v[idleHeld], v[idleFDs], v[idleRSS])
	if m.note != "" {
		out += " (" + m.note + ")"
	}
	return out
}
