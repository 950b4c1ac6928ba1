package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/splicerlb/splicer/pkg/balance"
)

// Bounds enforced by validation; docs/configuration.md lists them per key.
const (
	maxWorkers = 1024
	// A pipe holds at least a page. 1GiB per pipe is far past any gain;
	// above fs.pipe-max-size (1MiB by default) the kernel requires
	// CAP_SYS_RESOURCE anyway.
	minPipeSize = 4 << 10
	maxPipeSize = 1 << 30
	// A socket buffer below 4 KiB holds almost nothing; the kernel doubles
	// what it is asked and keeps it in an int, hence 1 GiB at most.
	minReceiveBuffer = 4 << 10
	maxReceiveBuffer = 1 << 30
	minBufferSize    = 4 << 10
	maxBufferSize    = 64 << 20
	// The strategy's own bound (see balance.MaxMaglevTableSize).
	maxMaglevTableSize = balance.MaxMaglevTableSize
	maxRetries         = 10
	// The kernel's limits for TCP_KEEPIDLE, TCP_KEEPINTVL (seconds) and
	// TCP_KEEPCNT.
	minKeepalive      = time.Second
	maxKeepalive      = 32767 * time.Second
	maxKeepaliveCount = 127
	maxRiseFall       = 100
	maxWeight         = MaxWeight
	maxNameLen        = 64
)

// validate checks the resolved config against the rules that no single
// value can break on its own: ranges, combinations, uniqueness, and options
// given to the wrong protocol. raw tells explicit settings from defaults.
func validate(cfg *Config, raw *rawConfig, ps *problems) {
	validateGlobal(cfg.Global, scope{ps: ps, key: "global", label: "global."})
	validateLog(cfg.Log, scope{ps: ps, key: "log", label: "log."})
	validateDNS(cfg.DNS, scope{ps: ps, key: "dns", label: "dns."}, "")
	if len(cfg.Frontends) == 0 {
		scope{ps: ps}.addf("frontend", "at least one [[frontend]] is required")
	}
	validateNames(cfg.Frontends, raw.Frontends, ps)
	for i := range cfg.Frontends {
		validateFrontend(&cfg.Frontends[i], &raw.Frontends[i], frontendScope(ps, i, cfg.Frontends[i].Name))
	}
	validateListeners(cfg.Frontends, cfg.Admin, ps)
	validateAdmin(cfg.Admin, raw.Admin, cfg.Frontends, ps)
	warn(cfg, raw, ps)
}

func validateGlobal(g Global, sc scope) {
	sc.between("workers", g.Workers, 0, maxWorkers)
	sc.atLeast("max_connections", g.MaxConnections, 1)
	sc.atLeast("max_pipes", g.MaxPipes, 0)
	sc.sizeBetween("pipe_size", g.PipeSize, minPipeSize, maxPipeSize)
	sc.sizeBetween("buffer_size", g.BufferSize, minBufferSize, maxBufferSize)
	sc.positive("shutdown_timeout", g.ShutdownTimeout)
	validateDaemonFiles(g, sc)
}

func validateLog(l Log, sc scope) {
	sc.oneOf("level", l.Level, "debug", "info", "warn", "error")
	sc.oneOf("format", l.Format, "json", "console")
	validateConnectionLog(l, sc)
}

// validateNames requires a unique, well-formed name per frontend: names
// label stats and select frontends in admin commands.
func validateNames(fronts []Frontend, raw []rawFrontend, ps *problems) {
	first := make(map[string]int)
	for i, f := range fronts {
		sc := frontendScope(ps, i, f.Name)
		switch {
		case raw[i].Name == nil:
			sc.addf("name", "required: every frontend needs a unique name")
		case raw[i].Name.err != nil:
			// Reported by resolve.
		case !validName(f.Name):
			sc.addf("name", "must be 1 to %d characters from A-Z a-z 0-9 _ . -, got %q", maxNameLen, f.Name)
		default:
			if j, dup := first[f.Name]; dup {
				sc.addf("name", "%q is already used by frontend[%d]", f.Name, j)
			} else {
				first[f.Name] = i
			}
		}
	}
}

// validName allows the characters of a bare TOML key plus '.', which need no
// quoting in logs, metrics labels or URLs.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for _, c := range []byte(name) {
		if !isBareKeyByte(c) && c != '.' {
			return false
		}
	}
	return true
}

func validateFrontend(f *Frontend, r *rawFrontend, sc scope) {
	sc.oneOf("protocol", f.Protocol, ProtocolTCP, ProtocolUDP)
	sc.oneOf("strategy", f.Strategy, StrategyRoundRobin, StrategyLeastConn, StrategyP2C, StrategyMaglev)
	validateMaglev(f, sc)

	sc.atLeast("max_connections", f.MaxConnections, 0)
	sc.atLeast("max_queue", f.MaxQueue, 0)
	sc.positive("queue_timeout", f.QueueTimeout)
	sc.positive("connect_timeout", f.ConnectTimeout)
	sc.positive("idle_timeout", f.IdleTimeout)
	sc.positive("half_close_timeout", f.HalfCloseTimeout)
	sc.between("retries", f.Retries, 0, maxRetries)
	sc.durationBetween("keepalive_idle", f.KeepaliveIdle, minKeepalive, maxKeepalive)
	sc.durationBetween("keepalive_interval", f.KeepaliveInterval, minKeepalive, maxKeepalive)
	sc.between("keepalive_count", f.KeepaliveCount, 1, maxKeepaliveCount)
	sc.atLeast("max_connections_per_client", f.MaxConnectionsPerClient, 0)
	sc.atLeast("connection_rate_per_client", f.ConnectionRatePerClient, 0)
	if f.SlowStart < 0 {
		sc.addf("slow_start", "must not be negative, got %v", f.SlowStart)
	}
	sc.oneOf("on_down", f.OnDown, OnDownKeep, OnDownClose)
	sc.atLeast("responses", f.Responses, -1)
	sc.atLeast("max_flows", f.MaxFlows, 1)
	if f.ReceiveBuffer != 0 {
		sc.sizeBetween("receive_buffer", f.ReceiveBuffer, minReceiveBuffer, maxReceiveBuffer)
	}

	validateProtocolOptions(f, r, sc)
	validateProxy(f, r, sc)
	validateFrontendLog(f, r, sc)
	validateHealth(f.Health, r.Health, sc)
	validateRoles(f.Health, sc)
	validateProbeCost(f, r.Health, sc)
	if f.Discovery != nil {
		validateDiscovery(f, r, sc)
	} else {
		validateBackends(f.Backends, r.Backends, sc)
	}
}

// validateMaglev requires a prime table size (Maglev's permutations cover
// the table only when its size is prime) with room for every backend.
func validateMaglev(f *Frontend, sc scope) {
	n := f.MaglevTableSize
	switch {
	case n < 2 || n > maxMaglevTableSize:
		sc.addf("maglev_table_size", "must be a prime between 2 and %d, got %d", maxMaglevTableSize, n)
	case !isPrime(n):
		sc.addf("maglev_table_size", "must be a prime between 2 and %d, got %d (the next prime is %d)",
			maxMaglevTableSize, n, nextPrime(n))
	case f.Strategy == StrategyMaglev && n < len(f.Backends):
		sc.addf("maglev_table_size", "must be at least the number of backends (%d), got %d", len(f.Backends), n)
	}
}

// isPrime is trial division: n is at most maxMaglevTableSize, so this is a
// thousand steps at worst.
func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func nextPrime(n int) int {
	for !isPrime(n) {
		n++
	}
	return n
}

// validateProtocolOptions refuses options set explicitly on a frontend of
// the protocol they do not apply to: silently ignoring them would hide a
// misunderstanding.
func validateProtocolOptions(f *Frontend, r *rawFrontend, sc scope) {
	type option struct {
		field string
		set   bool
	}
	tcpOnly := []option{
		{"max_connections", r.MaxConnections != nil},
		{"connect_timeout", r.ConnectTimeout != nil},
		{"max_queue", r.MaxQueue != nil},
		{"queue_timeout", r.QueueTimeout != nil},
		{"half_close_timeout", r.HalfCloseTimeout != nil},
		{"retries", r.Retries != nil},
		{"tcp_keepalive", r.TCPKeepalive != nil},
		{"keepalive_idle", r.KeepaliveIdle != nil},
		{"keepalive_interval", r.KeepaliveInterval != nil},
		{"keepalive_count", r.KeepaliveCount != nil},
		{"on_down", r.OnDown != nil},
	}
	udpOnly := []option{
		{"responses", r.Responses != nil},
		{"max_flows", r.MaxFlows != nil},
		{"receive_buffer", r.ReceiveBuffer != nil},
	}
	switch f.Protocol {
	case ProtocolTCP:
		for _, o := range udpOnly {
			if o.set {
				sc.addf(o.field, "only applies to udp frontends")
			}
		}
	case ProtocolUDP:
		for _, o := range tcpOnly {
			if o.set {
				sc.addf(o.field, "only applies to tcp frontends")
			}
		}
		switch f.Health.Check {
		case CheckTCP, CheckPostgres, CheckMySQL, CheckRedis, CheckHTTP:
			if f.Health.Port == 0 {
				sc.addf("health.check", "%q probes over TCP; on a udp frontend set health.port to the backends' TCP port", f.Health.Check)
			}
		}
	}
}

func validateHealth(h Health, r *rawHealth, sc scope) {
	if r == nil {
		r = &rawHealth{}
	}
	sc.oneOf("health.check", h.Check, CheckNone, CheckTCP, CheckSendExpect, CheckPostgres, CheckMySQL, CheckRedis, CheckHTTP)
	sc.positive("health.interval", h.Interval)
	sc.positive("health.timeout", h.Timeout)
	// Unset, these copy interval, which is checked already.
	if r.FastInterval != nil {
		sc.positive("health.fast_interval", h.FastInterval)
	}
	if r.DownInterval != nil {
		sc.positive("health.down_interval", h.DownInterval)
	}
	sc.between("health.rise", h.Rise, 1, maxRiseFall)
	sc.between("health.fall", h.Fall, 1, maxRiseFall)
	sc.between("health.passive_fall", h.PassiveFall, 0, maxRiseFall)
	sc.between("health.port", h.Port, 0, 65535)

	if h.Send != "" && h.SendHex != "" {
		sc.addf("health.send_hex", "set send or send_hex, not both")
	}
	if _, err := hex.DecodeString(h.SendHex); err != nil {
		sc.addf("health.send_hex", "not valid hex: %v", err)
	}
	if h.Expect != "" && h.ExpectRegex != "" {
		sc.addf("health.expect_regex", "set expect or expect_regex, not both")
	}
	if _, err := regexp.Compile(h.ExpectRegex); err != nil {
		sc.addf("health.expect_regex", "invalid regular expression: %v", err)
	}
	if h.Check == CheckSendExpect {
		if h.Send == "" && h.SendHex == "" {
			sc.addf("health.check", `"send_expect" needs send or send_hex`)
		}
		if h.Expect == "" && h.ExpectRegex == "" {
			sc.addf("health.check", `"send_expect" needs expect or expect_regex`)
		}
	}
	if (h.Check == CheckPostgres || h.Check == CheckMySQL) && h.User == "" {
		sc.addf("health.user", "must not be empty for check %q", h.Check)
	}
	if h.Check == CheckRedis && h.User != "" && h.Password.IsZero() {
		sc.addf("health.user", `check "redis" logs in as a user with AUTH user password: set health.password too`)
	}
	if !strings.HasPrefix(h.Path, "/") {
		sc.addf("health.path", `must start with "/", got %q`, h.Path)
	}
	sc.between("health.status", h.Status, 100, 599)
}

func validateBackends(backends []Backend, raw []rawBackend, sc scope) {
	if len(backends) == 0 {
		sc.addf("backend", "at least one [[frontend.backend]] is required")
		return
	}
	addrs := make(map[netip.AddrPort]int)
	hosts := make(map[string]int)
	names := make(map[string]int)
	primary := false
	for j, b := range backends {
		field := fmt.Sprintf("backend[%d].", j)
		primary = primary || !b.Backup
		dupAddr := false
		if b.Host != "" {
			hp := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Address.Port())))
			if j0, seen := hosts[hp]; seen {
				sc.addf(field+"address", "%s is already used by backend[%d]", hp, j0)
				dupAddr = true
			} else {
				hosts[hp] = j
			}
		}
		if b.Address.IsValid() { // else reported by resolve, or a host name
			j0, seen := addrs[b.Address]
			switch {
			case seen:
				sc.addf(field+"address", "%v is already used by backend[%d]", b.Address, j0)
				dupAddr = true
			case b.Address.Addr().IsUnspecified():
				sc.addf(field+"address", "%v is not a destination; give the backend's own IP", b.Address.Addr())
			case b.Address.Port() == 0:
				sc.addf(field+"address", "port must be between 1 and 65535, got 0")
			}
			if !seen {
				addrs[b.Address] = j
			}
		}
		// A name defaulted from a duplicate address is reported as such.
		j0, seen := names[b.Name]
		switch {
		case raw[j].Name != nil && raw[j].Name.err == nil && b.Name == "":
			sc.addf(field+"name", "must not be empty")
		case seen && b.Name != "" && !dupAddr:
			sc.addf(field+"name", "%q is already used by backend[%d]", b.Name, j0)
		case !seen:
			names[b.Name] = j
		}
		sc.between(field+"weight", b.Weight, 1, maxWeight)
		sc.atLeast(field+"max_connections", b.MaxConnections, 0)
	}
	if !primary {
		sc.addf("backend", "every backend is a backup; at least one must be primary")
	}
}

// listener is an address a frontend (or the admin port) will bind.
type listener struct {
	addr  netip.AddrPort
	owner int // frontend index; -1 for the admin port
}

// portKey groups listeners that can conflict: same protocol, same port.
type portKey struct {
	protocol string
	port     uint16
}

// validateListeners refuses two listeners that would take the same traffic.
// The data plane binds with SO_REUSEPORT, so the kernel would not refuse
// them: it would silently split connections between two frontends.
func validateListeners(fronts []Frontend, admin Admin, ps *problems) {
	bound := make(map[portKey][]listener)
	// An admin address that does not parse was reported by resolve.
	if ap, err := netip.ParseAddrPort(admin.Listen); err == nil {
		k := portKey{ProtocolTCP, ap.Port()}
		bound[k] = append(bound[k], listener{addr: ap, owner: -1})
	}
	for i, f := range fronts {
		if f.Protocol != ProtocolTCP && f.Protocol != ProtocolUDP {
			continue // reported already; its listeners bind nothing
		}
		sc := frontendScope(ps, i, f.Name)
		for _, a := range f.Listen {
			if a.Port() == 0 {
				continue // a free port picked at bind time conflicts with nothing
			}
			k := portKey{f.Protocol, a.Port()}
			for _, b := range bound[k] {
				if !sameTraffic(a.Addr(), b.addr.Addr()) {
					continue
				}
				switch {
				case b.owner == -1:
					sc.addf("listen", "%v conflicts with admin.listen %v", a, b.addr)
				case b.owner == i && a == b.addr:
					sc.addf("listen", "%v is listed twice", a)
				case b.owner == i:
					sc.addf("listen", "%v conflicts with %v of the same frontend", a, b.addr)
				default:
					sc.addf("listen", "%v conflicts with %v of %s", a, b.addr, frontendLabel(b.owner, fronts[b.owner].Name))
				}
				break
			}
			bound[k] = append(bound[k], listener{addr: a, owner: i})
		}
	}
}

// sameTraffic reports whether listeners on the same port at a and b would
// share traffic: the same address, or the wildcard of a family and any
// address of that family.
func sameTraffic(a, b netip.Addr) bool {
	if a == b {
		return true
	}
	return a.Is4() == b.Is4() && (a.IsUnspecified() || b.IsUnspecified())
}
