package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// udpLossTimeout is how long a UDP request waits for its reply. UDP has no
// retransmission: a request unanswered by then counts as lost, and the
// client moves on to the next one. (A variable so the tool's own tests,
// run beside other load, can wait longer.)
var udpLossTimeout = 200 * time.Millisecond

// udpProbeAttempts bounds the datagrams sent to check that a freshly
// started proxy relays: one may be lost without the proxy being broken.
const udpProbeAttempts = 10

// lossPercent is the share of UDP requests left without a reply.
func (r loadResult) lossPercent() float64 {
	sent := r.ops + r.lost
	if sent == 0 {
		return 0
	}
	return 100 * float64(r.lost) / float64(sent)
}

// udpRequestResponse opens socks UDP sockets, each its own source port and
// so its own flow through a proxy, and on each sends messageSize-byte
// requests to addr one after the other for d, timing each echo.
func udpRequestResponse(ctx context.Context, addr string, socks int, d time.Duration) (loadResult, error) {
	raddr, err := netip.ParseAddrPort(addr)
	if err != nil {
		return loadResult{}, fmt.Errorf("UDP address: %w", err)
	}
	cs := make([]*net.UDPConn, 0, socks)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for range socks {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(raddr))
		if err != nil {
			return loadResult{}, fmt.Errorf("open UDP socket: %w", err)
		}
		cs = append(cs, c)
	}
	start := time.Now()
	end := start.Add(d)
	results := make([]workerResult, socks)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { udpRequestResponseWorker(ctx, end, c, &results[i]) })
	}
	wg.Wait()
	return collect(results, time.Since(start), true), nil
}

// udpRequestResponseWorker sends requests on c until the test ends. A lost
// request is counted and the next one sent; any other failure (a refused
// port) leaves the socket unusable, so the worker stops.
func udpRequestResponseWorker(ctx context.Context, end time.Time, c *net.UDPConn, res *workerResult) {
	out := bytes.Repeat([]byte{'u'}, messageSize)
	in := make([]byte, messageSize+1)
	for seq := uint64(1); !over(ctx, end); seq++ {
		t0 := time.Now()
		lost, err := udpExchange(c, seq, out, in)
		switch {
		case err != nil:
			res.errors++
			res.err = err
			return
		case lost:
			res.lost++
		default:
			res.hist.record(time.Since(t0))
			res.ops++
		}
	}
}

// udpQueries runs workers that each, until d has passed, send one
// messageSize-byte query to addr from a fresh socket (a new source port, so
// a new flow through a proxy), wait for its reply and close the socket: the
// shape of DNS traffic.
func udpQueries(ctx context.Context, addr string, workers int, d time.Duration) (loadResult, error) {
	raddr, err := netip.ParseAddrPort(addr)
	if err != nil {
		return loadResult{}, fmt.Errorf("UDP address: %w", err)
	}
	start := time.Now()
	end := start.Add(d)
	results := make([]workerResult, workers)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { udpQueryWorker(ctx, end, net.UDPAddrFromAddrPort(raddr), &results[i]) })
	}
	wg.Wait()
	return collect(results, time.Since(start), false), nil
}

// udpQueryWorker loops until the test ends; a failed query is counted and
// the loop goes on, as in the connection-rate test.
func udpQueryWorker(ctx context.Context, end time.Time, raddr *net.UDPAddr, res *workerResult) {
	out := bytes.Repeat([]byte{'q'}, messageSize)
	in := make([]byte, messageSize+1)
	for seq := uint64(1); !over(ctx, end); seq++ {
		lost, err := udpQuery(raddr, seq, out, in)
		switch {
		case err != nil:
			res.errors++
			if res.err == nil {
				res.err = err
			}
		case lost:
			res.lost++
		default:
			res.ops++
		}
	}
}

// udpQuery makes one exchange from a socket of its own.
func udpQuery(raddr *net.UDPAddr, seq uint64, out, in []byte) (lost bool, err error) {
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return false, fmt.Errorf("open UDP socket: %w", err)
	}
	defer c.Close()
	return udpExchange(c, seq, out, in)
}

// udpProbe checks that addr echoes a datagram, sending up to
// udpProbeAttempts before it gives up.
func udpProbe(addr string) error {
	raddr, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("UDP address: %w", err)
	}
	out := []byte("probe---") // room for the sequence number
	in := make([]byte, len(out)+1)
	for seq := range uint64(udpProbeAttempts) {
		lost, err := udpQuery(net.UDPAddrFromAddrPort(raddr), seq, out, in)
		if err != nil {
			return err
		}
		if !lost {
			return nil
		}
	}
	return fmt.Errorf("no echo from %s to %d datagrams", addr, udpProbeAttempts)
}

// udpExchange stamps out with seq in its first 8 bytes, sends it on the
// connected socket c and waits up to udpLossTimeout for its echo, reading
// into in, which must be longer than out so that an oversized reply shows.
// A reply of the right size with another sequence number answers an
// earlier request that was already counted lost: it is discarded and the
// wait goes on. lost is true when the deadline passed without the echo.
func udpExchange(c net.Conn, seq uint64, out, in []byte) (lost bool, err error) {
	binary.BigEndian.PutUint64(out, seq)
	if _, err := c.Write(out); err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(udpLossTimeout)); err != nil {
		return false, fmt.Errorf("set deadline: %w", err)
	}
	// Bounded by the deadline: every Read returns by then.
	for {
		n, err := c.Read(in)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return true, nil
		case err != nil:
			return false, fmt.Errorf("read echo: %w", err)
		case n == len(out) && binary.BigEndian.Uint64(in) != seq:
			continue // a late echo of a lost request
		case !bytes.Equal(in[:n], out):
			return false, errEchoMismatch
		}
		return false, nil
	}
}
