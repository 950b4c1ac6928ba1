package main

import (
	"context"
	"fmt"
)

// UDP load shapes, fixed by the issue so that runs compare.
const (
	udpSockets      = 16 // request/response: one long-lived flow each
	udpQueryClients = 16 // new-flow queries in flight at once
)

// udpReqRespTest measures echoed datagrams per second on udpSockets
// long-lived flows, their latency and loss. Lost requests are part of the
// result, not a failure; a socket that fails otherwise fails the test, as
// it would silently lower the rate.
func udpReqRespTest(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
	var res loadResult
	cpu, charged, err := proxyCPU(in, func() error {
		var err error
		res, err = udpRequestResponse(ctx, in.udpEchoAddr, udpSockets, r.opts.duration)
		if err == nil && res.errors > 0 {
			err = fmt.Errorf("%d of %d sockets failed: %w", res.errors, udpSockets, res.err)
		}
		return err
	})
	if err != nil {
		return measurement{}, err
	}
	if res.ops == 0 {
		return measurement{}, fmt.Errorf("no echo received, %d requests lost", res.lost)
	}
	m := measurement{values: map[metric]float64{
		udpReqRate: res.rate(),
		udpReqP50:  micros(res.hist.percentile(50)),
		udpReqP99:  micros(res.hist.percentile(99)),
		udpReqLoss: res.lossPercent(),
	}}
	if charged {
		m.values[udpReqCPUPer100k] = cpu.Seconds() / (float64(res.ops) / 100_000)
	}
	return m, nil
}

// udpQueryTest measures one-reply queries per second, each from a new
// source port and so a new flow in the proxy, which is configured to end
// the flow at the reply.
func udpQueryTest(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
	res, err := udpQueries(ctx, in.udpQueryAddr, udpQueryClients, r.opts.duration)
	if err != nil {
		return measurement{}, err
	}
	switch {
	case res.ops == 0 && res.err != nil:
		return measurement{}, fmt.Errorf("no query answered, %d lost, %d failed: %w", res.lost, res.errors, res.err)
	case res.ops == 0:
		return measurement{}, fmt.Errorf("no query answered, %d lost", res.lost)
	}
	m := measurement{values: map[metric]float64{
		udpQueryRate: res.rate(),
		udpQueryLoss: res.lossPercent(),
	}}
	if res.errors > 0 {
		m.note = fmt.Sprintf("%d of %d queries failed, first: %v", res.errors, res.ops+res.lost+res.errors, res.err)
	}
	return m, nil
}
