package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Target names, which are also the report's column headings.
const (
	targetDirect  = "direct"
	targetSplicer = "splicer"
	targetHAProxy = "haproxy"
	targetNginx   = "nginx"
	targetIOCopy  = "iocopy"
)

// targetNames lists every target in report column order.
func targetNames() []string {
	return []string{targetDirect, targetSplicer, targetHAProxy, targetNginx, targetIOCopy}
}

// startTimeout bounds a proxy's start, up to answering an echo.
const startTimeout = 15 * time.Second

// route is one proxied path: a listen address and its backend. The name
// labels it in the generated configs.
type route struct {
	name, listen, backend string
}

// backends are the servers behind every target.
type backends struct {
	echo, iperf string // addresses
}

// target is one column of the report: the backends reached directly, or
// through a proxy the harness starts afresh for every measurement.
type target struct {
	name string
	// command writes the proxy's config files under dir and returns the
	// command line serving routes; nil for direct, which runs nothing.
	command func(dir string, routes []route) ([]string, error)
	env     []string // added to the proxy's environment
	// maxIdle caps the idle test for a proxy whose fds per connection would
	// overrun its fd limit; 0 means no cap. capNote says why.
	maxIdle int
	capNote string
}

// instance is a started target: the addresses clients connect to and, for
// a proxy, its process (nil for direct).
type instance struct {
	echoAddr, iperfAddr string
	proc                *process
}

// stop ends the instance's proxy, if any.
func (in *instance) stop() {
	if in.proc != nil {
		in.proc.stop()
	}
}

// start launches a fresh instance of t in front of b, with its config in a
// new directory under tmp, and returns once it relays an echo: a proxy that
// starts but cannot relay fails here, with its output, rather than later.
func (t *target) start(ctx context.Context, tmp string, b backends) (*instance, error) {
	if t.command == nil {
		return &instance{echoAddr: b.echo, iperfAddr: b.iperf}, nil
	}
	dir, err := os.MkdirTemp(tmp, t.name+"-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	echoPort, iperfPort := ports[0], ports[1]
	in := &instance{echoAddr: loopback(echoPort), iperfAddr: loopback(iperfPort)}
	routes := []route{
		{name: "echo", listen: in.echoAddr, backend: b.echo},
		{name: "iperf", listen: in.iperfAddr, backend: b.iperf},
	}
	argv, err := t.command(dir, routes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	if in.proc, err = startProcess(t.name, argv, t.env); err != nil {
		return nil, err
	}
	if err := in.proc.waitListening(ctx, startTimeout, echoPort, iperfPort); err != nil {
		in.stop()
		return nil, err
	}
	dialer := net.Dialer{Timeout: opTimeout}
	probe := []byte("probe")
	if err := echoOnce(ctx, &dialer, in.echoAddr, probe, make([]byte, len(probe))); err != nil {
		in.stop()
		return nil, in.proc.failure(fmt.Errorf("echo through the proxy: %w", err))
	}
	return in, nil
}

// loopback is the IPv4 loopback address with port.
func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// buildTargets returns the targets named in only (all when only is empty),
// in column order, and for each one that cannot run, the reason.
func buildTargets(tl *tools, only map[string]bool, fdLimit int) ([]*target, map[string]string) {
	all := map[string]*target{
		targetDirect:  {name: targetDirect},
		targetSplicer: {name: targetSplicer, command: splicerCommand(tl.splicer, fdLimit)},
		targetHAProxy: {name: targetHAProxy, command: haproxyCommand(tl.haproxy, fdLimit)},
		targetNginx:   {name: targetNginx, command: nginxCommand(tl.nginx, tl.nginxStream, fdLimit)},
		targetIOCopy:  ioCopyTarget(tl.self, fdLimit),
	}
	var ts []*target
	skipped := make(map[string]string)
	for _, name := range targetNames() {
		if len(only) > 0 && !only[name] {
			continue
		}
		if why, ok := tl.missing[name]; ok {
			skipped[name] = why
			continue
		}
		ts = append(ts, all[name])
	}
	return ts, skipped
}

// ioCopyFDsPerConn is what an idle connection costs the io.Copy proxy: two
// sockets and two pipes, which Go's splice holds until EOF.
const ioCopyFDsPerConn = 6

// ioCopyTarget is the goroutine-per-connection io.Copy proxy: this binary's
// hidden iocopy subcommand. Its idle test is capped to fit its fd limit,
// with a tenth of the limit kept for listeners and slack.
func ioCopyTarget(self string, fdLimit int) *target {
	maxIdle := fdLimit * 9 / 10 / ioCopyFDsPerConn
	return &target{
		name: targetIOCopy,
		command: func(_ string, routes []route) ([]string, error) {
			argv := []string{self, "iocopy"}
			for _, r := range routes {
				argv = append(argv, "-route", r.listen+"="+r.backend)
			}
			return argv, nil
		},
		env:     []string{fmt.Sprintf("GOMAXPROCS=%d", proxyWorkers)},
		maxIdle: maxIdle,
		capNote: fmt.Sprintf("iocopy holds %d fds per connection, so its idle test is capped at %d connections to fit its fd limit of %d",
			ioCopyFDsPerConn, maxIdle, fdLimit),
	}
}
