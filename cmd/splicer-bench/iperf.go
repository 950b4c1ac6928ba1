package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// iperfSlack is how much longer than its -t an iperf3 client may take
// (connection setup, the end-of-test exchange) before it is killed.
const iperfSlack = 30 * time.Second

// iperfResult is what one iperf3 client run measured on the receiving side.
type iperfResult struct {
	bitsPerSecond float64
	bytes         int64
}

// gbits is the volume received, in gigabits (10^9 bits).
func (r iperfResult) gbits() float64 { return float64(r.bytes) * 8 / 1e9 }

// iperfOutput is the part of iperf3's -J report the harness reads. iperf3
// reports some failures only in "error", with exit status 0.
type iperfOutput struct {
	End struct {
		SumReceived *struct {
			Bytes         int64   `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// parseIperf reads an iperf3 -J report.
func parseIperf(b []byte) (iperfResult, error) {
	var out iperfOutput
	if err := json.Unmarshal(b, &out); err != nil {
		return iperfResult{}, fmt.Errorf("parse iperf3 JSON: %w", err)
	}
	if out.Error != "" {
		return iperfResult{}, fmt.Errorf("iperf3: %s", out.Error)
	}
	s := out.End.SumReceived
	if s == nil {
		return iperfResult{}, errors.New("iperf3 JSON has no end.sum_received")
	}
	return iperfResult{bitsPerSecond: s.BitsPerSecond, bytes: s.Bytes}, nil
}

// runIperf runs an iperf3 client against addr with the given number of
// parallel streams for d (rounded up to whole seconds, iperf3's unit).
// iperf3 also opens a control connection to the same address; through a
// proxy it is proxied like the data streams.
func runIperf(ctx context.Context, iperf3, addr string, streams int, d time.Duration) (iperfResult, error) {
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		return iperfResult{}, fmt.Errorf("iperf3 address %q has no port", addr)
	}
	secs := max(int(math.Ceil(d.Seconds())), 1)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+iperfSlack)
	defer cancel()
	cmd := exec.CommandContext(ctx, iperf3, "-c", host, "-p", port, "-t", strconv.Itoa(secs),
		"-P", strconv.Itoa(streams), "-J")
	out, err := cmd.Output()
	res, perr := parseIperf(out)
	if perr != nil && err != nil {
		// The JSON error, when there is one, says more than the exit status.
		return iperfResult{}, fmt.Errorf("%w (%v)", perr, err)
	}
	return res, perr
}
