package health

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// Result is the verdict of one probe.
type Result struct {
	// OK reports whether the target passed.
	OK bool
	// Msg says what the probe saw, prefixed by the probe kind and the
	// address probed, for example
	// "postgres probe 127.0.0.1:5432: connect: connection refused".
	Msg string
	// Duration is the time the probe took, from dial to verdict.
	Duration time.Duration
	// Role is the database role the server reported on a passing role
	// probe: config.RolePrimary or config.RoleReplica; "" when the probe
	// does not read roles.
	Role string
	// Epoch orders the primaries of one frontend when several answer as
	// primary: PostgreSQL's timeline, which each promotion raises; 0 where
	// the server has no such number (Redis, MySQL).
	Epoch uint64
}

// Checker probes one target.
type Checker interface {
	// Check probes target, the backend's service address (a checker built
	// with a side port probes that port instead), and returns a verdict.
	// ctx carries the probe timeout: Check returns once ctx is done, leaves
	// no goroutine behind and never reports OK for a probe it cut short.
	// Check is safe for concurrent use.
	Check(ctx context.Context, target netip.AddrPort) Result
}

// probeFunc runs one probe against addr. On success it returns what it saw:
// a detail for the message ("status 200") and, for a role probe, the
// server's role; on failure an error whose text is the cause, worded for an
// operator and without the address, which Check prepends.
type probeFunc func(ctx context.Context, addr netip.AddrPort) (seen, error)

// seen is what a passing probe reports.
type seen struct {
	detail string
	role   string // config.RolePrimary, config.RoleReplica, or "" when not read
	epoch  uint64 // see Result.Epoch
}

// saw is a seen with a detail alone, for the probes that read no role.
func saw(detail string) seen { return seen{detail: detail} }

// checker turns a probeFunc into a Checker: it applies the side port, times
// the probe and builds the message.
type checker struct {
	kind  string // the config name of the check, first word of every message
	port  uint16 // side port; 0 probes the service port
	probe probeFunc
	// secrets re-reads the probe's secret; nil when it has none.
	secrets SecretReloader
	// proxy names the targets that expect a PROXY header first.
	proxy ProxyHeaders
}

// Check implements Checker.
func (c *checker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	if c.port != 0 {
		target = netip.AddrPortFrom(target.Addr(), c.port)
	} else {
		ctx = withProxyHeaders(ctx, c.proxy)
	}
	s, err := c.probe(ctx, target)
	if err != nil {
		s = seen{detail: err.Error()}
	}
	return Result{
		OK:       err == nil,
		Msg:      c.kind + " probe " + target.String() + ": " + s.detail,
		Duration: time.Since(start),
		Role:     s.role,
		Epoch:    s.epoch,
	}
}

// stepError is a probe failure at one step (connect, write, read): its text
// is the step and the innermost cause, "connect: connection refused", since
// the message already names the address that net's own errors repeat.
type stepError struct {
	step  string
	cause string
	err   error
}

func (e *stepError) Error() string { return e.step + ": " + e.cause }
func (e *stepError) Unwrap() error { return e.err }

// failed wraps err from step into a stepError. Once ctx is done the cause is
// the timeout or cancellation, whatever the socket reported: a conn closed
// by ctx reports "use of closed network connection", which would mislead.
func failed(ctx context.Context, step string, err error) error {
	return &stepError{step: step, cause: describe(ctx, err), err: err}
}

// describe returns the innermost, address-free text of err.
func describe(ctx context.Context, err error) string {
	var (
		se *os.SyscallError
		oe *net.OpError
		ue *url.Error
	)
	switch {
	// Probe conns carry ctx's deadline, so a conn deadline is ctx's too.
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "i/o timeout"
	case ctx.Err() != nil:
		return ctx.Err().Error()
	case errors.As(err, &se):
		return se.Err.Error()
	case errors.As(err, &oe):
		return oe.Err.Error()
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return err.Error()
}
