package config

import (
	"fmt"
	"net/netip"
)

// warn records what a valid config says that will not do what it seems
// to: keys that are set and have no effect, a backend that is its own
// frontend, an admin port other hosts can reach. They end up in
// Config.Warnings; `splicer check` prints them and the daemon logs them.
// What depends on the host (limits, sysctls, capabilities) is in
// EnvironmentWarnings.
func warn(cfg *Config, raw *rawConfig, ps *problems) {
	if raw.Global != nil && raw.Global.PipeSize != nil && cfg.Global.MaxPipes == 0 {
		scope{ps: ps, key: "global", label: "global."}.warnf("pipe_size",
			"has no effect: max_pipes = 0 turns splicing off, so no pipe is made")
	}
	for i := range cfg.Frontends {
		f, r := &cfg.Frontends[i], &raw.Frontends[i]
		sc := frontendScope(ps, i, f.Name)
		warnInert(f, r, sc)
		for j, b := range f.Backends {
			for _, a := range f.Listen {
				if selfLoop(a, b.Address, netip.Addr.IsLoopback) {
					sc.warnf(fmt.Sprintf("backend[%d].address", j),
						"%v is this frontend's own listen address %v: a client sent there comes back to the frontend, over and over", b.Address, a)
					break
				}
			}
		}
	}
	if ap, err := parseAddrPort(cfg.Admin.Listen); cfg.Admin.Listen != "" && err == nil && !ap.Addr().Unmap().IsLoopback() {
		scope{ps: ps, key: "admin", label: "admin."}.warnf("listen",
			"%v is reachable from other hosts: whoever reaches it can try tokens (each source is limited to a few failures a minute); "+
				"firewall it to the operators' networks, or use admin.socket", ap)
	}
}

// inertKey is a key that has no effect in its frontend, and why.
type inertKey struct {
	field string
	set   bool
	why   string
}

// warnInert warns of the frontend's keys that are set and ignored: each
// only matters with another setting that is not there. Keys of the other
// protocol are errors (validateProtocolOptions), not warnings.
func warnInert(f *Frontend, r *rawFrontend, sc scope) {
	h := r.Health
	if h == nil {
		h = &rawHealth{}
	}
	tcp := f.Protocol == ProtocolTCP
	keys := []inertKey{
		{"maglev_table_size", r.MaglevTableSize != nil && f.Strategy != StrategyMaglev,
			fmt.Sprintf("only the maglev strategy uses it (strategy is %q)", f.Strategy)},
		{"queue_timeout", tcp && r.QueueTimeout != nil && f.MaxQueue == 0, "max_queue = 0: no client ever waits in a queue"},
	}
	for _, k := range []struct {
		field string
		set   bool
	}{{"keepalive_idle", r.KeepaliveIdle != nil}, {"keepalive_interval", r.KeepaliveInterval != nil}, {"keepalive_count", r.KeepaliveCount != nil}} {
		keys = append(keys, inertKey{k.field, tcp && k.set && !f.TCPKeepalive, "tcp_keepalive = false: no keepalive probe is sent"})
	}
	check := f.Health.Check
	for _, k := range []struct {
		field string
		set   bool
		used  bool // by this check
		by    string
	}{
		{"send", h.Send != nil, check == CheckSendExpect, `check "send_expect"`},
		{"send_hex", h.SendHex != nil, check == CheckSendExpect, `check "send_expect"`},
		{"expect", h.Expect != nil, check == CheckSendExpect, `check "send_expect"`},
		{"expect_regex", h.ExpectRegex != nil, check == CheckSendExpect, `check "send_expect"`},
		{"user", h.User != nil, check == CheckPostgres || check == CheckMySQL || check == CheckRedis, `checks "postgres", "mysql" and "redis"`},
		{"database", h.Database != nil, check == CheckPostgres, `check "postgres"`},
		{"path", h.Path != nil, check == CheckHTTP, `check "http"`},
		{"status", h.Status != nil, check == CheckHTTP, `check "http"`},
	} {
		keys = append(keys, inertKey{"health." + k.field, k.set && !k.used, fmt.Sprintf("only %s uses it (check is %q)", k.by, check)})
	}
	if check == CheckNone {
		why := `check "none" sends no probe`
		for _, k := range []struct {
			field string
			set   bool
		}{{"timeout", h.Timeout != nil}, {"fast_interval", h.FastInterval != nil}, {"rise", h.Rise != nil},
			{"fall", h.Fall != nil}, {"port", h.Port != nil}} {
			keys = append(keys, inertKey{"health." + k.field, k.set, why})
		}
		passiveOff := why + " and passive_fall = 0 turns passive detection off"
		keys = append(keys,
			inertKey{"health.interval", h.Interval != nil && (f.Health.PassiveFall == 0 || h.DownInterval != nil),
				map[bool]string{true: passiveOff, false: why + "; passive detection waits down_interval, which is set"}[f.Health.PassiveFall == 0]},
			inertKey{"health.down_interval", h.DownInterval != nil && f.Health.PassiveFall == 0, passiveOff})
	}
	for _, k := range keys {
		if k.set {
			sc.warnf(k.field, "has no effect: %s", k.why)
		}
	}
}

// selfLoop reports whether a backend at b is a frontend's own listener at
// listen: the same address and port, or the port of a wildcard listener at
// an address of its family that local says is this host's.
func selfLoop(listen, b netip.AddrPort, local func(netip.Addr) bool) bool {
	if listen.Port() != b.Port() || listen.Port() == 0 {
		return false
	}
	la, ba := listen.Addr().Unmap(), b.Addr().Unmap()
	if la == ba {
		return true
	}
	if !la.IsUnspecified() {
		return false
	}
	// Listeners are IPV6_V6ONLY: [::] takes IPv6 only, 0.0.0.0 IPv4.
	return la.Is4() == ba.Is4() && local(ba)
}
