package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
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
	// udp routes datagrams rather than a TCP stream.
	udp bool
	// responses, on a udp route, is how many replies to a datagram end its
	// flow in the proxy; 0 means no limit: the flow lasts until idle.
	responses int
	// sendProxy, on a tcp route, has the proxy send a PROXY v2 header to
	// the backend before the client's bytes.
	sendProxy bool
	// logAll logs every connection (splicer only; the other proxies
	// always run without a connection log).
	logAll bool
	// backends, when not empty, replaces backend with a list, and
	// checkInterval, when not zero, has the proxy check each of them with a
	// TCP connect that often (none are checked otherwise).
	backends      []string
	checkInterval time.Duration
}

// backendList is every backend of the route.
func (r route) backendList() []string {
	if len(r.backends) > 0 {
		return r.backends
	}
	return []string{r.backend}
}

// backends are the servers behind every target; one that no selected suite
// needs is not started, and its address is "".
type backends struct {
	echo, iperf, udpEcho string // addresses
	// echoProxy is an echo server that reads a PROXY header first.
	echoProxy string
	// redis and postgres are the application servers; checked are the
	// health test's listeners.
	redis, postgres string
	checked         []string
}

// target is one column of the report: the backends reached directly, or
// through a proxy the harness starts afresh for every measurement.
type target struct {
	name string
	// command writes the proxy's config files under dir and returns the
	// command line serving routes; nil for direct, which runs nothing.
	command func(dir string, routes []route) ([]string, error)
	env     []string // added to the proxy's environment
	// udp is whether the target relays UDP; every target relays TCP.
	udp bool
	// checks is whether the target runs active health checks, the health
	// suite's subject.
	checks bool
	// maxIdle caps the idle test for a proxy whose fds per connection would
	// overrun its fd limit; 0 means no cap. capNote says why.
	maxIdle int
	capNote string
	// sendsProxyV2 is whether the proxy can send a PROXY v2 header to its
	// backend: its TCP instances get a third route that does.
	sendsProxyV2 bool
}

// serves reports whether t can run the tests of suite s.
func (t *target) serves(s suite) bool {
	switch s {
	case suiteUDP:
		return t.udp
	case suiteHealth:
		return t.checks
	default:
		return true
	}
}

// instance is a started target: the addresses clients connect to and, for
// a proxy, its process (nil for direct). A proxy is started for one suite
// and has only that suite's addresses.
type instance struct {
	echoAddr, iperfAddr       string // TCP
	echoProxyAddr             string // TCP, to echoProxy with a PROXY v2 header; "" when the target sends none
	udpEchoAddr, udpQueryAddr string // UDP
	redisAddr, pgAddr         string // the application servers
	checkedAddr               string // the health suite's route
	proc                      *process
}

// stop ends the instance's proxy, if any.
func (in *instance) stop() {
	if in.proc != nil {
		in.proc.stop()
	}
}

// start launches a fresh instance of t in front of b with the routes of
// suite s, with its config in a new directory under tmp, and returns once
// it relays an echo on every echo route: a proxy that starts but cannot
// relay fails here, with its output, rather than later. logAll has it log
// every connection (see route.logAll).
func (t *target) start(ctx context.Context, tmp string, b backends, s suite, logAll bool) (*instance, error) {
	if t.command == nil {
		return &instance{echoAddr: b.echo, iperfAddr: b.iperf, udpEchoAddr: b.udpEcho, udpQueryAddr: b.udpEcho,
			redisAddr: b.redis, pgAddr: b.postgres}, nil
	}
	dir, err := os.MkdirTemp(tmp, t.name+"-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	n := 2
	switch {
	case s == suiteTCP && t.sendsProxyV2:
		n = 3
	case s == suiteHealth:
		n = 1
	}
	ports, err := freePorts(s.network(), n)
	if err != nil {
		return nil, err
	}
	in, routes := proxied(s, b, ports)
	for i := range routes {
		routes[i].logAll = logAll
	}
	argv, err := t.command(dir, routes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	if in.proc, err = startProcess(t.name, argv, t.env); err != nil {
		return nil, err
	}
	if err := in.proc.waitListening(ctx, startTimeout, s.network(), routePorts(routes)...); err != nil {
		in.stop()
		return nil, err
	}
	if err := in.probe(ctx, s); err != nil {
		in.stop()
		return nil, in.proc.failure(fmt.Errorf("echo through the proxy: %w", err))
	}
	return in, nil
}

// proxied returns the instance of a proxy listening on the ports, and the
// routes of suite s it is to be configured with. The UDP suite has two
// routes to the one echo backend: long-lived flows, and one-reply flows
// for the new-flow test. The TCP suite has the echo and iperf3 routes and,
// given a third port, a route that sends a PROXY v2 header to the echo
// server that reads one. The application suite routes to Redis and
// PostgreSQL (a server that is not running has no route); the health suite
// has one route to every checked listener.
func proxied(s suite, b backends, ports []int) (*instance, []route) {
	first := loopback(ports[0])
	switch s {
	case suiteHealth:
		return &instance{checkedAddr: first}, []route{
			{name: "checked", listen: first, backends: b.checked, checkInterval: healthInterval},
		}
	case suiteApp:
		in := &instance{}
		var routes []route
		if b.redis != "" {
			in.redisAddr = first
			routes = append(routes, route{name: "redis", listen: first, backend: b.redis})
		}
		if b.postgres != "" {
			in.pgAddr = loopback(ports[1])
			routes = append(routes, route{name: "postgres", listen: in.pgAddr, backend: b.postgres})
		}
		return in, routes
	}
	second := loopback(ports[1])
	if s == suiteUDP {
		return &instance{udpEchoAddr: first, udpQueryAddr: second}, []route{
			{name: "udp-echo", listen: first, backend: b.udpEcho, udp: true},
			{name: "udp-query", listen: second, backend: b.udpEcho, udp: true, responses: 1},
		}
	}
	in := &instance{echoAddr: first, iperfAddr: second}
	routes := []route{
		{name: "echo", listen: first, backend: b.echo},
		{name: "iperf", listen: second, backend: b.iperf},
	}
	if len(ports) > 2 && b.echoProxy != "" {
		in.echoProxyAddr = loopback(ports[2])
		routes = append(routes, route{name: "echo-pp2", listen: in.echoProxyAddr, backend: b.echoProxy, sendProxy: true})
	}
	return in, routes
}

// probe relays one echo through each echo route of suite s. The iperf3
// route is only checked to listen: a probe would count as a test run in
// the iperf3 server.
func (in *instance) probe(ctx context.Context, s suite) error {
	switch s {
	case suiteApp:
		return in.probeApps(ctx)
	case suiteHealth:
		return nil // its backends need not be up yet: the checks decide
	}
	if s == suiteUDP {
		for _, addr := range []string{in.udpEchoAddr, in.udpQueryAddr} {
			if err := udpProbe(addr); err != nil {
				return err
			}
		}
		return nil
	}
	dialer := net.Dialer{Timeout: opTimeout}
	probe := []byte("probe")
	for _, addr := range []string{in.echoAddr, in.echoProxyAddr} {
		if addr == "" {
			continue
		}
		if err := echoOnce(ctx, &dialer, addr, probe, make([]byte, len(probe))); err != nil {
			return err
		}
	}
	return nil
}

// routePorts are the ports the routes listen on.
func routePorts(routes []route) []int {
	ports := make([]int, 0, len(routes))
	for _, r := range routes {
		_, p, _ := net.SplitHostPort(r.listen)
		if n, err := strconv.Atoi(p); err == nil {
			ports = append(ports, n)
		}
	}
	return ports
}

// loopback is the IPv4 loopback address with port.
func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// buildTargets returns the targets named in only (all when only is empty)
// that serve any of the suites, in column order, and for each one that
// cannot run, the reason. splicer runs with splicerAffinity as its
// global.cpu_affinity.
func buildTargets(tl *tools, only map[string]bool, suites []suite, fdLimit int, splicerAffinity string) ([]*target, map[string]string) {
	all := map[string]*target{
		targetDirect:  {name: targetDirect, udp: true},
		targetSplicer: {name: targetSplicer, command: splicerCommand(tl.splicer, fdLimit, splicerAffinity), udp: true, checks: true, sendsProxyV2: true},
		targetHAProxy: {name: targetHAProxy, command: haproxyCommand(tl.haproxy, fdLimit), checks: true, sendsProxyV2: true},
		targetNginx:   {name: targetNginx, command: nginxCommand(tl.nginx, tl.nginxStream, fdLimit), udp: true},
		targetIOCopy:  ioCopyTarget(tl.self, fdLimit),
	}
	var ts []*target
	skipped := make(map[string]string)
	for _, name := range targetNames() {
		t := all[name]
		if len(only) > 0 && !only[name] || !slices.ContainsFunc(suites, t.serves) {
			continue
		}
		if why, ok := tl.missing[name]; ok {
			skipped[name] = why
			continue
		}
		ts = append(ts, t)
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
