package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Settings every proxy gets, so that the columns compare like with like:
// the same number of workers, timeouts and pipe budget, no logging on the
// data path, and one listener per route.
const (
	proxyWorkers = 2 // event loops, threads or worker processes
	// maxPipes bounds the splice pipes of splicer and HAProxy alike.
	maxPipes       = 1024
	connectTimeout = "2s"
	idleTimeout    = "10m"
	// udpIdleTimeout ends a quiet UDP flow: splicer's default, outlasting
	// any test, so that no flow expires while it is measured.
	udpIdleTimeout = "30s"
)

// splicerCommand configures splicer with one frontend per route, no health
// checks (the backends are local and known up) and no admin port. Its
// connection and UDP flow caps are the fd limit: fds, not the caps, are
// what bound it. affinity is its global.cpu_affinity, "" pinning nothing.
// The connection log is off, as the other proxies run without one, except
// on a route with logAll: every connection is logged to connections.log in
// dir.
func splicerCommand(bin string, fdLimit int, affinity string) func(string, []route) ([]string, error) {
	return func(dir string, routes []route) ([]string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, `[global]
workers = %d
max_connections = %d
max_pipes = %d
shutdown_timeout = "2s"
cpu_affinity = %q

[log]
level = "warn"
connections_file = %q

[admin]
listen = ""
`, proxyWorkers, fdLimit, maxPipes, affinity, filepath.Join(dir, "connections.log"))
		for _, r := range routes {
			log := "off"
			if r.logAll {
				log = "all"
			}
			fmt.Fprintf(&b, `
[[frontend]]
name = %q
listen = %q
log_connections = %q
`, r.name, r.listen, log)
			if r.udp {
				fmt.Fprintf(&b, `protocol = "udp"
idle_timeout = %q
responses = %d
max_flows = %d
`, udpIdleTimeout, splicerResponses(r.responses), fdLimit)
			} else {
				fmt.Fprintf(&b, "connect_timeout = %q\nidle_timeout = %q\n", connectTimeout, idleTimeout)
				if r.sendProxy {
					b.WriteString("send_proxy = \"v2\"\n")
				}
			}
			if r.checkInterval > 0 {
				fmt.Fprintf(&b, "\n  [frontend.health]\n  check = \"tcp\"\n  interval = %q\n", r.checkInterval.String())
			} else {
				b.WriteString("\n  [frontend.health]\n  check = \"none\"\n")
			}
			for _, be := range r.backendList() {
				fmt.Fprintf(&b, "\n  [[frontend.backend]]\n  address = %q\n", be)
			}
		}
		path, err := writeConfig(dir, "splicer.toml", b.String())
		if err != nil {
			return nil, err
		}
		return []string{bin, "run", "-c", path, "-log-level", "warn"}, nil
	}
}

// splicerResponses is a route's responses in splicer's terms, where -1
// means no limit.
func splicerResponses(responses int) int {
	if responses == 0 {
		return -1
	}
	return responses
}

// haproxyCommand configures HAProxy in tcp mode with splicing allowed
// (option splice-auto), as splicer splices, and no logging. HAProxy refuses
// to start when maxconn cannot fit its fd limit (two fds per connection,
// two per pipe, one per checked server, a few more of its own), so maxconn
// is the largest that fits.
func haproxyCommand(bin string, fdLimit int) func(string, []route) ([]string, error) {
	return func(dir string, routes []route) ([]string, error) {
		checked := 0
		for _, r := range routes {
			if r.checkInterval > 0 {
				checked += len(r.backendList())
			}
		}
		maxconn := (fdLimit - 2*maxPipes - checked - 100) / 2
		var b strings.Builder
		fmt.Fprintf(&b, `global
    nbthread %d
    maxconn %d
    maxpipes %d

defaults
    mode tcp
    timeout connect %s
    timeout client %s
    timeout server %s
    option splice-auto
`, proxyWorkers, maxconn, maxPipes, connectTimeout, idleTimeout, idleTimeout)
		for _, r := range routes {
			fmt.Fprintf(&b, "\nlisten %s\n    bind %s\n", r.name, r.listen)
			for i, be := range r.backendList() {
				name := "backend"
				if len(r.backends) > 0 {
					name = fmt.Sprintf("b%d", i)
				}
				fmt.Fprintf(&b, "    server %s %s", name, be)
				if r.sendProxy {
					b.WriteString(" send-proxy-v2")
				}
				if r.checkInterval > 0 {
					fmt.Fprintf(&b, " check inter %dms", r.checkInterval.Milliseconds())
				}
				b.WriteString("\n")
			}
		}
		path, err := writeConfig(dir, "haproxy.cfg", b.String())
		if err != nil {
			return nil, err
		}
		// -db: stay in the foreground, so the PID started is the one working.
		return []string{bin, "-db", "-f", path}, nil
	}
}

// nginxCommand configures nginx's stream module with half-close passed on
// (proxy_half_close on, as splicer does) and one listening socket per
// worker (reuseport), the usual tuning. A UDP route gets splicer's flow
// idle timeout as proxy_timeout and its reply limit as proxy_responses
// (unset: no limit). It runs with dir as its prefix and logs to stderr, so
// it touches no global file.
func nginxCommand(bin, streamModule string, fdLimit int) func(string, []route) ([]string, error) {
	return func(dir string, routes []route) ([]string, error) {
		var b strings.Builder
		if streamModule != "" {
			fmt.Fprintf(&b, "load_module %s;\n", streamModule)
		}
		fmt.Fprintf(&b, `worker_processes %d;
worker_rlimit_nofile %d;
pid %s;
error_log stderr warn;

events {
    worker_connections %d;
}

stream {
    proxy_connect_timeout %s;
    proxy_timeout %s;
    proxy_half_close on;
`, proxyWorkers, fdLimit, filepath.Join(dir, "nginx.pid"), fdLimit, connectTimeout, idleTimeout)
		for _, r := range routes {
			if !r.udp {
				fmt.Fprintf(&b, "\n    server {\n        listen %s reuseport;\n        proxy_pass %s;\n    }\n", r.listen, r.backend)
				continue
			}
			fmt.Fprintf(&b, "\n    server {\n        listen %s udp reuseport;\n        proxy_pass %s;\n        proxy_timeout %s;\n",
				r.listen, r.backend, udpIdleTimeout)
			if r.responses > 0 {
				fmt.Fprintf(&b, "        proxy_responses %d;\n", r.responses)
			}
			b.WriteString("    }\n")
		}
		b.WriteString("}\n")
		path, err := writeConfig(dir, "nginx.conf", b.String())
		if err != nil {
			return nil, err
		}
		return []string{bin, "-p", dir + "/", "-c", path, "-e", "stderr", "-g", "daemon off;"}, nil
	}
}

// writeConfig writes a generated config file and returns its path.
func writeConfig(dir, name, text string) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return path, nil
}
