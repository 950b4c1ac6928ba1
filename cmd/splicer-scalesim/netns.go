package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// The simulation's network, all in 198.18.0.0/15 (RFC 2544, set aside for
// benchmarks), inside namespaces it creates and deletes:
//
//	client ──── router ──┬── lb1 ─┐
//	198.18/16    ECMP    ├── lb2 ─┼── (via router) ── backends + dnsmasq
//	(AnyIP)      on VIP  └── lb3 ─┘                   198.19.100.0/24
//
// The client namespace holds every address of 198.18.0.0/16 through a
// local route (AnyIP), so a client can connect from any of them. The
// router spreads the virtual IP over the three splicer namespaces with a
// multipath route hashed on the 5-tuple (fib_multipath_hash_policy = 1),
// as an ECMP router fed by BGP would. Each splicer namespace holds the
// virtual IP on its loopback; the backends' namespace is reached through
// the router too.
var (
	vip         = netip.MustParseAddr("198.19.255.1")
	clientNet   = netip.MustParsePrefix("198.18.0.0/16")
	dnsAddr     = netip.MustParseAddr("198.19.100.53")
	servicePort = uint16(5432)
)

// lbAddr is instance i's own address (i from 1), routerSide the router's
// end of its link.
func lbAddr(i int) netip.Addr      { return netip.AddrFrom4([4]byte{198, 19, byte(i), 2}) }
func routerSide(i int) netip.Addr  { return netip.AddrFrom4([4]byte{198, 19, byte(i), 1}) }
func backendAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 100, byte(11 + i)}) }

// clientAddr is the i-th client's address, from 198.18.1.0 up.
func clientAddr(i int) netip.Addr {
	n := 256 + i
	return netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)})
}

// topology is the set of namespaces of one run, named with the run's
// prefix so that two runs, or a run and anything else, never collide.
type topology struct {
	prefix    string
	instances int
	made      []string
}

func (t *topology) ns(name string) string { return t.prefix + name }

// Names of the namespaces.
func (t *topology) client() string   { return t.ns("client") }
func (t *topology) router() string   { return t.ns("router") }
func (t *topology) lb(i int) string  { return t.ns(fmt.Sprintf("lb%d", i)) }
func (t *topology) backends() string { return t.ns("backends") }

// ipCmd runs ip(8) with args.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inNetns runs cmd in namespace ns.
func inNetns(ns string, cmd ...string) error {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, cmd...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("in %s: %s: %v: %s", ns, strings.Join(cmd, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// build creates the namespaces, links, addresses and routes.
func (t *topology) build() error {
	names := []string{t.client(), t.router(), t.backends()}
	for i := 1; i <= t.instances; i++ {
		names = append(names, t.lb(i))
	}
	for _, n := range names {
		if err := ipCmd("netns", "add", n); err != nil {
			return err
		}
		t.made = append(t.made, n)
		if err := ipCmd("-n", n, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	r := t.router()
	steps := [][]string{
		// client <-> router
		{"-n", r, "link", "add", "r0", "type", "veth", "peer", "name", "c0", "netns", t.client()},
		{"-n", r, "addr", "add", "198.19.0.1/24", "dev", "r0"},
		{"-n", r, "link", "set", "r0", "up"},
		{"-n", t.client(), "addr", "add", "198.19.0.2/24", "dev", "c0"},
		{"-n", t.client(), "link", "set", "c0", "up"},
		{"-n", t.client(), "route", "add", "default", "via", "198.19.0.1"},
		{"-n", t.client(), "route", "add", "local", clientNet.String(), "dev", "lo"},
		{"-n", r, "route", "add", clientNet.String(), "via", "198.19.0.2"},
		// backends <-> router
		{"-n", r, "link", "add", "rb", "type", "veth", "peer", "name", "b0", "netns", t.backends()},
		{"-n", r, "addr", "add", "198.19.100.1/24", "dev", "rb"},
		{"-n", r, "link", "set", "rb", "up"},
		{"-n", t.backends(), "addr", "add", "198.19.100.2/24", "dev", "b0"},
		{"-n", t.backends(), "link", "set", "b0", "up"},
		{"-n", t.backends(), "route", "add", "default", "via", "198.19.100.1"},
		{"-n", t.backends(), "addr", "add", dnsAddr.String() + "/32", "dev", "b0"},
	}
	for i := range backendCount {
		steps = append(steps, []string{"-n", t.backends(), "addr", "add", backendAddr(i).String() + "/32", "dev", "b0"})
	}
	for i := 1; i <= t.instances; i++ {
		dev := fmt.Sprintf("r%d", i)
		steps = append(steps,
			[]string{"-n", r, "link", "add", dev, "type", "veth", "peer", "name", "l0", "netns", t.lb(i)},
			[]string{"-n", r, "addr", "add", routerSide(i).String() + "/24", "dev", dev},
			[]string{"-n", r, "link", "set", dev, "up"},
			[]string{"-n", t.lb(i), "addr", "add", lbAddr(i).String() + "/24", "dev", "l0"},
			[]string{"-n", t.lb(i), "link", "set", "l0", "up"},
			[]string{"-n", t.lb(i), "route", "add", "default", "via", routerSide(i).String()},
			[]string{"-n", t.lb(i), "addr", "add", vip.String() + "/32", "dev", "lo"},
		)
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	if err := inNetns(r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1"); err != nil {
		return err
	}
	return t.announce(allInstances(t.instances), false)
}

// allInstances is 1..n.
func allInstances(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// announce makes the router spread the virtual IP over the instances
// listed, as a BGP daemon installing the paths its peers announce would:
// a plain multipath route (hash-threshold: the hash space is cut in equal
// parts, so removing a path also moves some flows between the others), or
// with resilient a resilient nexthop group (Linux 5.13: the buckets of a
// removed path are reassigned, no other flow moves).
func (t *topology) announce(instances []int, resilient bool) error {
	r := t.router()
	_ = ipCmd("-n", r, "route", "del", vip.String()+"/32")
	_ = ipCmd("-n", r, "nexthop", "del", "id", "100")
	if !resilient {
		args := []string{"-n", r, "route", "add", vip.String() + "/32"}
		for _, i := range instances {
			args = append(args, "nexthop", "via", lbAddr(i).String(), "dev", fmt.Sprintf("r%d", i))
		}
		return ipCmd(args...)
	}
	var group []string
	for _, i := range instances {
		id := fmt.Sprint(i)
		_ = ipCmd("-n", r, "nexthop", "del", "id", id)
		if err := ipCmd("-n", r, "nexthop", "add", "id", id, "via", lbAddr(i).String(), "dev", fmt.Sprintf("r%d", i)); err != nil {
			return err
		}
		group = append(group, id)
	}
	if err := ipCmd("-n", r, "nexthop", "add", "id", "100", "group", strings.Join(group, "/"),
		"type", "resilient", "buckets", "512", "idle_timer", "0"); err != nil {
		return err
	}
	return ipCmd("-n", r, "route", "add", vip.String()+"/32", "nhid", "100")
}

// withdrawResilient leaves only the instances keep in the resilient
// group, in place: they keep their buckets.
func (t *topology) withdrawResilient(keep []int) error {
	ids := make([]string, len(keep))
	for j, i := range keep {
		ids[j] = fmt.Sprint(i)
	}
	return ipCmd("-n", t.router(), "nexthop", "replace", "id", "100", "group", strings.Join(ids, "/"),
		"type", "resilient", "buckets", "512", "idle_timer", "0")
}

// teardown deletes every namespace made, which deletes their links.
func (t *topology) teardown() {
	for _, n := range t.made {
		if err := ipCmd("netns", "delete", n); err != nil {
			fmt.Fprintln(os.Stderr, "splicer-scalesim: cleanup:", err)
		}
	}
	t.made = nil
}

// inNS runs f on an OS thread moved into namespace ns, so the sockets f
// creates live there; they keep working from any thread afterwards. The
// thread is never moved back: it ends with f's goroutine.
func inNS(ns string, f func() error) error {
	fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	defer unix.Close(fd)
	done := make(chan error, 1)
	go func() {
		// Left locked on purpose: the runtime discards the thread when
		// the goroutine ends, so no other goroutine runs in ns.
		runtime.LockOSThread()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		done <- f()
	}()
	return <-done
}
