package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line's settings.
type options struct {
	splicer string
	clients int
	held    int
	out     string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("splicer-scalesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.splicer, "splicer", "bin/splicer", "the splicer binary to run")
	fs.IntVar(&o.clients, "clients", 10000, "client addresses (1 to 60000)")
	fs.IntVar(&o.held, "held", 2000, "long-lived connections held through each of the 4 instance withdrawals, from clients of their own (4 × held at most -clients)")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.clients < 1 || o.clients > 60000:
		return o, fmt.Errorf("-clients %d: want 1 to 60000", o.clients)
	case o.held < 1 || 4*o.held > o.clients || o.held > 5000:
		return o, fmt.Errorf("-held %d: want 1 to min(-clients / 4, 5000)", o.held)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "splicer-scalesim:", err)
		}
		return exitUsage
	}
	if err := preflight(o); err != nil {
		fmt.Fprintln(stderr, "splicer-scalesim:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := setUp(ctx, o, stderr)
	if s != nil {
		defer s.tearDown()
	}
	if err != nil {
		fmt.Fprintln(stderr, "splicer-scalesim:", err)
		return exitFail
	}
	report, err := s.measure(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "splicer-scalesim:", err)
		for _, in := range s.lbs {
			out, _ := os.ReadFile(in.log)
			fmt.Fprintf(stderr, "lb%d's log:\n%s\n", in.n, tail(string(out), 3000))
		}
		return exitFail
	}
	fmt.Fprint(stdout, report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(stderr, "splicer-scalesim:", err)
			return exitFail
		}
	}
	return exitOK
}

// preflight checks what the run needs before changing anything.
func preflight(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces and veth links")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs ip(8): install iproute2")
	}
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		return errors.New("needs dnsmasq: install dnsmasq-base")
	}
	if _, err := os.Stat(o.splicer); err != nil {
		return fmt.Errorf("splicer binary: %w (run make build)", err)
	}
	return nil
}

// sim is one run: its topology and the processes in it.
type sim struct {
	o        options
	log      io.Writer
	dir      string
	topo     *topology
	backends *backends
	dns      *dnsServer
	lbs      []*instance
	probe    *prober
	config   string
}

// configText is the one config every instance runs; strategy is its only
// variable.
func configText(strategy string) string {
	return fmt.Sprintf(`# splicer-scalesim: the same file for every instance.
[global]
shutdown_timeout = "2s"
max_connections = 15000

[log]
level = "warn"

[admin]
listen = "127.0.0.1:9090"

[dns]
resolvers = ["%s:53"]
interval = "500ms"
min_interval = "500ms"

[[frontend]]
name = "pg"
listen = "0.0.0.0:%d"
strategy = %q
  [frontend.discovery]
  type = "srv"
  name = %q
  [frontend.health]
  interval = "1s"
`, dnsAddr, servicePort, strategy, srvName)
}

// setUp builds the namespaces and starts the backends, dnsmasq and the
// instances, and waits until every instance serves the ten backends. On
// error the returned sim, when not nil, still needs tearDown.
func setUp(ctx context.Context, o options, log io.Writer) (*sim, error) {
	// Children inherit the limit: each instance and this process hold a
	// socket per client connection, twice.
	lim := unix.Rlimit{Cur: 20000, Max: 20000}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("raise the open-file limit: %w", err)
	}
	dir, err := os.MkdirTemp("", "splicer-scalesim-")
	if err != nil {
		return nil, err
	}
	s := &sim{o: o, log: log, dir: dir,
		topo: &topology{prefix: fmt.Sprintf("ssim%d-", os.Getpid()), instances: 3}}
	s.probe = &prober{ns: s.topo.client(), workers: 4 * runtime.NumCPU()}
	fmt.Fprintf(log, "building namespaces %s*\n", s.topo.prefix)
	if err := s.topo.build(); err != nil {
		return s, err
	}
	if s.backends, err = startBackends(s.topo.backends()); err != nil {
		return s, err
	}
	s.dns = &dnsServer{ns: s.topo.backends(), dir: dir}
	if err := s.dns.set(allBackends()); err != nil {
		return s, err
	}
	s.config = filepath.Join(dir, "splicer.toml")
	if err := os.WriteFile(s.config, []byte(configText("maglev")), 0o644); err != nil {
		return s, err
	}
	splicer, err := filepath.Abs(o.splicer)
	if err != nil {
		return s, err
	}
	for i := 1; i <= s.topo.instances; i++ {
		in, err := startInstance(i, s.topo.lb(i), splicer, s.config, dir)
		if err != nil {
			return s, err
		}
		s.lbs = append(s.lbs, in)
	}
	return s, s.converge(ctx, "maglev", allBackends())
}

// tearDown stops everything the run started and deletes the namespaces
// and files.
func (s *sim) tearDown() {
	for _, in := range s.lbs {
		in.stop()
	}
	if s.dns != nil {
		s.dns.stop()
	}
	if s.backends != nil {
		s.backends.close()
	}
	s.topo.teardown()
	os.RemoveAll(s.dir)
}

// allBackends is 0..backendCount-1.
func allBackends() []int {
	out := make([]int, backendCount)
	for i := range out {
		out[i] = i
	}
	return out
}

// converge waits until every instance runs strategy on exactly the
// backends listed.
func (s *sim) converge(ctx context.Context, strategy string, list []int) error {
	want := make([]string, len(list))
	for j, i := range list {
		want[j] = netip.AddrPortFrom(backendAddr(i), servicePort).String()
	}
	slices.Sort(want)
	var last error
	err := waitUntil(30*time.Second, fmt.Sprintf("every instance on %d backends with %s", len(list), strategy), func() bool {
		if ctx.Err() != nil {
			return true
		}
		for _, in := range s.lbs {
			st, err := in.state()
			if err != nil {
				last = err
				return false
			}
			slices.Sort(st.Backends)
			if st.Strategy != strategy || !slices.Equal(st.Backends, want) {
				last = fmt.Errorf("lb%d: %s on %v", in.n, st.Strategy, st.Backends)
				return false
			}
		}
		return true
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}

// direct asks every instance directly, at its own address, from every
// client address.
func (s *sim) direct() ([][]answer, error) {
	out := make([][]answer, len(s.lbs))
	for k, in := range s.lbs {
		a, err := s.probe.ask(s.o.clients, func(int) netip.AddrPort { return netip.AddrPortFrom(lbAddr(in.n), servicePort) })
		if err != nil {
			return nil, fmt.Errorf("lb%d: %w", in.n, err)
		}
		out[k] = a
	}
	return out, nil
}

// agreement counts the clients every instance sends to the same backend.
func agreement(byInstance [][]answer) int {
	n := 0
	for i := range byInstance[0] {
		same := true
		for _, a := range byInstance[1:] {
			same = same && a[i].backend == byInstance[0][i].backend
		}
		if same {
			n++
		}
	}
	return n
}

// moves compares two answers per client: how many moved, how many of
// those were on gone, and how many clients gone had.
func moves(before, after []answer, gone string) (moved, movedFromGone, onGone int) {
	for i := range before {
		if before[i].backend == gone {
			onGone++
		}
		if before[i].backend != after[i].backend {
			moved++
			if before[i].backend == gone {
				movedFromGone++
			}
		}
	}
	return moved, movedFromGone, onGone
}

// withdrawal is what taking an instance out of the multipath set did to
// the connections held through the virtual IP.
type withdrawal struct {
	strategy, routing       string
	held, onGone            int
	brokenGone, brokenOther int
	reconnected, same       int
}

// withdraw holds connections through the virtual IP, takes the last
// instance out of the route, and finds which connections still work and
// which backend the broken ones reach when they reconnect.
//
// Each withdrawal uses clients of its own, from first on: a connection
// the previous one broke is still open on its instance, which never
// heard of the reset.
func (s *sim) withdraw(strategy string, resilient bool, first int) (withdrawal, error) {
	w := withdrawal{strategy: strategy, routing: "hash-threshold"}
	if resilient {
		w.routing = "resilient group"
	}
	all := allInstances(s.topo.instances)
	keep := all[:len(all)-1]
	gone := all[len(all)-1]
	if err := s.topo.announce(all, resilient); err != nil {
		return w, err
	}
	held, err := s.probe.hold(first, s.o.held)
	if err != nil {
		return w, err
	}
	defer closeAll(held)
	w.held = len(held)
	if resilient {
		err = s.topo.withdrawResilient(keep)
	} else {
		err = s.topo.announce(keep, false)
	}
	if err != nil {
		return w, err
	}
	var broken []*heldConn
	for _, h := range held {
		ok := h.ping()
		if h.instance == gone {
			w.onGone++
		}
		if !ok {
			broken = append(broken, h)
			if h.instance == gone {
				w.brokenGone++
			} else {
				w.brokenOther++
			}
		}
	}
	for _, h := range broken {
		a, err := s.probe.ask1(h.client)
		if err != nil {
			return w, err
		}
		w.reconnected++
		if a.backend == h.backend {
			w.same++
		}
	}
	return w, s.topo.announce(all, false)
}

// ask1 connects once from client i through the virtual IP.
func (p *prober) ask1(i int) (answer, error) {
	var a answer
	err := inNS(p.ns, func() error {
		var err error
		a, err = connectOnce(clientAddr(i), netip.AddrPortFrom(vip, servicePort))
		return err
	})
	return a, err
}

// setStrategy rewrites the config with strategy and reloads every
// instance (SIGHUP).
func (s *sim) setStrategy(ctx context.Context, strategy string) error {
	if err := os.WriteFile(s.config, []byte(configText(strategy)), 0o644); err != nil {
		return err
	}
	for _, in := range s.lbs {
		if err := in.signal(syscall.SIGHUP); err != nil {
			return err
		}
	}
	return s.converge(ctx, strategy, allBackends())
}

// measure runs the phases and returns the report.
func (s *sim) measure(ctx context.Context) (string, error) {
	var r strings.Builder
	start := time.Now()
	n := s.o.clients
	fmt.Fprintf(&r, "## ECMP simulation (splicer-scalesim)\n\n")
	fmt.Fprintf(&r, "%d splicer instances (one config: maglev, SRV discovery from dnsmasq, TTL 1 s), %d backends, %d client addresses, Linux %s, %d CPUs.\n\n",
		len(s.lbs), backendCount, n, kernel(), runtime.NumCPU())

	progress := func(what string) { fmt.Fprintf(s.log, "%6.1fs %s\n", time.Since(start).Seconds(), what) }
	progress("asking every instance from every client")
	before, err := s.direct()
	if err != nil {
		return "", err
	}
	agreed := agreement(before)
	progress("connecting every client through the virtual IP")
	viaVIP, err := s.probe.ask(n, func(int) netip.AddrPort { return netip.AddrPortFrom(vip, servicePort) })
	if err != nil {
		return "", err
	}
	perInstance := make([]int, len(s.lbs)+1)
	sameAsDirect := 0
	for i, a := range viaVIP {
		perInstance[a.instance]++
		if a.backend == before[0][i].backend {
			sameAsDirect++
		}
	}

	gone := 4
	progress("removing " + backendName(gone) + " from the SRV records")
	rest := slices.Delete(allBackends(), gone, gone+1)
	removedAt := time.Now()
	if err := s.dns.set(rest); err != nil {
		return "", err
	}
	if err := s.converge(ctx, "maglev", rest); err != nil {
		return "", err
	}
	convergence := time.Since(removedAt)
	after, err := s.direct()
	if err != nil {
		return "", err
	}
	agreedAfter := agreement(after)
	moved, movedGone, onGone := moves(before[0], after[0], backendName(gone))
	progress("putting " + backendName(gone) + " back")
	if err := s.dns.set(allBackends()); err != nil {
		return "", err
	}
	if err := s.converge(ctx, "maglev", allBackends()); err != nil {
		return "", err
	}
	back, err := s.direct()
	if err != nil {
		return "", err
	}
	agreedBack := agreement(back)
	// Rendezvous filling makes the table a function of the set alone: with
	// the backend back, every client is where it was before the removal.
	returned, strayed, unchanged := 0, 0, 0
	for i := range back[0] {
		switch b := back[0][i].backend; {
		case b == after[0][i].backend:
		case b == backendName(gone):
			returned++
		default:
			strayed++
		}
		if back[0][i].backend == before[0][i].backend {
			unchanged++
		}
	}

	var ws []withdrawal
	for _, strategy := range []string{"maglev", "roundrobin"} {
		if strategy != "maglev" {
			progress("reloading every instance with strategy " + strategy)
			if err := s.setStrategy(ctx, strategy); err != nil {
				return "", err
			}
		}
		for _, resilient := range []bool{false, true} {
			progress(fmt.Sprintf("withdrawing lb3 (%s, resilient %v)", strategy, resilient))
			w, err := s.withdraw(strategy, resilient, len(ws)*s.o.held)
			if err != nil {
				return "", err
			}
			ws = append(ws, w)
		}
	}

	fmt.Fprintf(&r, "| measure | result |\n|---|---|\n")
	fmt.Fprintf(&r, "| agreement: clients every instance sends to the same backend | %d of %d (%s) |\n", agreed, n, pct(agreed, n))
	fmt.Fprintf(&r, "| through the virtual IP: clients per instance | %s |\n", perInstanceText(perInstance[1:], n))
	fmt.Fprintf(&r, "| through the virtual IP: clients on the backend every instance picks | %d of %d (%s) |\n", sameAsDirect, n, pct(sameAsDirect, n))
	fmt.Fprintf(&r, "| one of %d backends leaves DNS: time until every instance serves without it | %.1f s |\n", backendCount, convergence.Seconds())
	fmt.Fprintf(&r, "| agreement after the removal | %d of %d (%s) |\n", agreedAfter, n, pct(agreedAfter, n))
	fmt.Fprintf(&r, "| clients moved by the removal | %d of %d (%s; ideal 10%%) |\n", moved, n, pct(moved, n))
	fmt.Fprintf(&r, "| of which the removed backend's | %d of its %d (%s) |\n", movedGone, onGone, pct(movedGone, onGone))
	fmt.Fprintf(&r, "| of which other backends' clients | %d (%s of all; ideal 0) |\n", moved-movedGone, pct(moved-movedGone, n))
	fmt.Fprintf(&r, "| the backend back in DNS: agreement | %d of %d (%s) |\n", agreedBack, n, pct(agreedBack, n))
	fmt.Fprintf(&r, "| clients moved by its return: to it | %d (ideal its %d) |\n", returned, onGone)
	fmt.Fprintf(&r, "| clients moved by its return: elsewhere | %d (ideal 0) |\n", strayed)
	fmt.Fprintf(&r, "| clients on the same backend as before the removal | %d of %d (%s; ideal 100%%) |\n\n", unchanged, n, pct(unchanged, n))

	fmt.Fprintf(&r, "lb3 taken out of the multipath route while %d clients (other ones each time) hold a connection through the virtual IP:\n\n", s.o.held)
	fmt.Fprintf(&r, "| strategy | route | held on lb3 | lb3's broken | others' broken | reconnected to the same backend |\n|---|---|---|---|---|---|\n")
	for _, w := range ws {
		fmt.Fprintf(&r, "| %s | %s | %d of %d | %d (%s) | %d of %d (%s) | %d of %d (%s) |\n",
			w.strategy, w.routing, w.onGone, w.held, w.brokenGone, pct(w.brokenGone, w.onGone),
			w.brokenOther, w.held-w.onGone, pct(w.brokenOther, w.held-w.onGone),
			w.same, w.reconnected, pct(w.same, w.reconnected))
	}
	fmt.Fprintf(&r, "\nRun time %.0f s.\n", time.Since(start).Seconds())
	return r.String(), nil
}

func perInstanceText(counts []int, n int) string {
	parts := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = fmt.Sprintf("lb%d %s", i+1, pct(c, n))
	}
	return strings.Join(parts, ", ")
}

// kernel is the running kernel's release.
func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
