package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Environment is what the host allows the process that loads the config:
// the limits the config's sizes must fit in. The daemon and `splicer
// check` read it when they start (see LoadIn); a zero field is unknown and
// checks nothing.
type Environment struct {
	// NoFile is RLIMIT_NOFILE as the process has it (Go raises the soft
	// limit to the hard one at start).
	NoFile uint64
	// PipeMaxSize is fs.pipe-max-size: the largest pipe an unprivileged
	// process may ask for, in bytes.
	PipeMaxSize int
	// RmemMax is net.core.rmem_max: the largest socket receive buffer an
	// unprivileged process may ask for, in bytes.
	RmemMax int
	// CapSysResource and CapNetAdmin say whether the process has these
	// capabilities, which lift the two limits above.
	CapSysResource, CapNetAdmin bool
	// LocalAddrs are the host's interface addresses, to tell a backend
	// that is a frontend's own wildcard listener.
	LocalAddrs []netip.Addr
}

// fdSpare is what the fd budget keeps for everything but connections:
// epoll and eventfds, logs, the state file, health probes, listeners.
const (
	fdSpare      = 100
	fdsPerWorker = 64
)

// warnEnvironment warns of what cfg asks for that env does not allow.
// Each warning names the key that matters most and the line it is on (the
// enclosing table's when the key is left at its default).
func warnEnvironment(cfg *Config, env Environment, ps *problems) {
	global := scope{ps: ps, key: "global", label: "global."}
	warnFDs(cfg, env, ps)
	g := cfg.Global
	if env.PipeMaxSize > 0 && g.MaxPipes > 0 && g.PipeSize > env.PipeMaxSize && !env.CapSysResource {
		global.warnf("pipe_size", "%s is above fs.pipe-max-size (%s), and this process lacks CAP_SYS_RESOURCE (it is not root): "+
			"its pipes keep the kernel's default of 64KiB; raise the sysctl or lower pipe_size", formatSize(g.PipeSize), formatSize(env.PipeMaxSize))
	}
	for i := range cfg.Frontends {
		f := &cfg.Frontends[i]
		sc := frontendScope(ps, i, f.Name)
		if f.Protocol == ProtocolUDP && env.RmemMax > 0 && f.ReceiveBuffer > env.RmemMax && !env.CapNetAdmin {
			sc.warnf("receive_buffer", "%s is above net.core.rmem_max (%s), and this process lacks CAP_NET_ADMIN: the kernel grants %s; "+
				"raise the sysctl or give the service CAP_NET_ADMIN (AmbientCapabilities=)", formatSize(f.ReceiveBuffer),
				formatSize(env.RmemMax), formatSize(env.RmemMax))
		}
		if len(env.LocalAddrs) == 0 {
			continue
		}
		local := func(a netip.Addr) bool { return slices.Contains(env.LocalAddrs, a) }
		for j, b := range f.Backends {
			for _, a := range f.Listen {
				// A loopback backend was warned of with the config.
				if !b.Address.Addr().Unmap().IsLoopback() && selfLoop(a, b.Address, local) {
					sc.warnf(fmt.Sprintf("backend[%d].address", j), "%v is an address of this host, on the port of "+
						"this frontend's listener %v: a client sent there comes back to the frontend, over and over", b.Address, a)
					break
				}
			}
		}
	}
}

// warnFDs warns when the connections, flows and pipes the config allows
// need more file descriptors than RLIMIT_NOFILE: each TCP connection
// holds two sockets, each UDP flow one, each pipe two. The warning names
// the key that accounts for the most of them.
func warnFDs(cfg *Config, env Environment, ps *problems) {
	if env.NoFile == 0 {
		return
	}
	g := cfg.Global
	admin := 0
	if cfg.Admin.Listen != "" || cfg.Admin.Socket != "" {
		admin = cfg.Admin.MaxConnections
	}
	fixed := 2*g.MaxPipes + fdsPerWorker*g.Workers + admin + fdSpare

	// The TCP connections are bounded by the global cap, or by the sum of
	// the frontends' caps when every TCP frontend has one and it is less.
	type part struct {
		sc    scope
		field string
		fds   int
	}
	var tcpFronts []part
	tcp, capped, flows := 0, true, 0
	top := part{sc: scope{ps: ps, key: "global", label: "global."}, field: "max_connections"}
	var udpTop part
	for i := range cfg.Frontends {
		f := &cfg.Frontends[i]
		sc := frontendScope(ps, i, f.Name)
		switch f.Protocol {
		case ProtocolTCP:
			tcpFronts = append(tcpFronts, part{sc, "max_connections", 2 * f.MaxConnections})
			tcp += f.MaxConnections
			capped = capped && f.MaxConnections > 0
		case ProtocolUDP:
			flows += f.MaxFlows
			if f.MaxFlows > udpTop.fds {
				udpTop = part{sc, "max_flows", f.MaxFlows}
			}
		}
	}
	switch {
	case len(tcpFronts) == 0:
		tcp = 0
	case capped && tcp < g.MaxConnections:
		top = slices.MaxFunc(tcpFronts, func(a, b part) int { return a.fds - b.fds })
	default:
		tcp = g.MaxConnections
	}
	top.fds = 2 * tcp
	if udpTop.fds > top.fds {
		top = udpTop
	}
	need := 2*tcp + flows + fixed
	if uint64(need) <= env.NoFile {
		return
	}
	var parts []string
	add := func(n, each int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d × %d %s", each, n, what))
		}
	}
	add(tcp, 2, "TCP connections")
	add(flows, 1, "UDP flows")
	add(g.MaxPipes, 2, "pipes")
	add(g.Workers, fdsPerWorker, "workers")
	if admin > 0 {
		parts = append(parts, fmt.Sprintf("%d admin connections", admin))
	}
	parts = append(parts, fmt.Sprintf("%d spare", fdSpare))
	effect := "accepting pauses (EMFILE) and clients wait"
	if flows > 0 {
		effect += ", and new UDP flows are dropped"
	}
	msg := fmt.Sprintf("needs up to %d file descriptors (%s) but RLIMIT_NOFILE is %d here: beyond it, %s. "+
		"Raise the limit (LimitNOFILE= under systemd) or lower this", need, strings.Join(parts, " + "), env.NoFile, effect)
	if top.sc.key == "global" && ps.lines.lineOf("global.max_connections") == 0 {
		// No [global] table: no line to point at. Say that the figure is
		// the default, and where to set it.
		ps.warn("global.max_connections", fmt.Sprintf("global.max_connections (the default, %d: the file has no [global] table)",
			g.MaxConnections), msg+" in a [global] table")
		return
	}
	top.sc.warnf(top.field, "%s", msg)
}
