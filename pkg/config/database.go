package config

import "net/netip"

// Database roles accepted by Health.Role and Discovery.Role.
const (
	// RoleAny accepts a primary or a replica; the probe still logs in and
	// reads the role, and max_lag holds replicas.
	RoleAny = "any"
	// RolePrimary accepts only a server that takes writes.
	RolePrimary = "primary"
	// RoleReplica accepts only a read-only copy of a primary.
	RoleReplica = "replica"
)

// Discovery takes a frontend's backends from a source outside the config
// ([frontend.discovery], or discovery = { ... } in the frontend): DNS
// records when Type is set, else Redis Sentinel.
type Discovery struct {
	// Type is the DNS record type looked up: DiscoverySRV, DiscoveryA or
	// DiscoveryAAAA; "" for Redis Sentinel.
	Type string
	// Name is the DNS name looked up.
	Name string
	// Port is the port of the addresses found by A and AAAA lookups (SRV
	// records carry their own).
	Port int
	// DNS is [dns] with the discovery table's own resolvers, timeout and
	// intervals.
	DNS DNS

	// Sentinel lists the Redis Sentinel addresses, asked in order until
	// one answers.
	Sentinel []netip.AddrPort
	// Master is the name of the master set the Sentinels watch.
	Master string
	// Role picks what becomes the backends: RolePrimary, the master (the
	// default), or RoleReplica, its replicas that Sentinel does not
	// consider down.
	Role string
	// Password names where the Sentinels' AUTH password is kept; the
	// password never appears in the config itself.
	Password Secret
}

type rawDiscovery struct {
	Type        *stringSetting   `toml:"type"`
	Name        *stringSetting   `toml:"name"`
	Port        *intSetting      `toml:"port"`
	Resolvers   *listSetting     `toml:"resolvers"`
	Timeout     *durationSetting `toml:"timeout"`
	Interval    *durationSetting `toml:"interval"`
	MinInterval *durationSetting `toml:"min_interval"`
	MaxInterval *durationSetting `toml:"max_interval"`

	Sentinel *listSetting   `toml:"sentinel"`
	Master   *stringSetting `toml:"master"`
	Role     *stringSetting `toml:"role"`
	Password *secretSetting `toml:"password"`
}

// onDownDefault is on_down when the file leaves it out: "close" for a
// frontend that routes by database role (health.role primary or replica,
// or Sentinel discovery), since a client left writing to a server that is
// no longer primary is what the role check exists to prevent; "keep"
// otherwise: a backend that left a DNS answer drains.
func onDownDefault(r *rawFrontend) string {
	if r.Discovery != nil && r.Discovery.Type == nil {
		return OnDownClose
	}
	if r.Health != nil && r.Health.Role != nil && r.Health.Role.err == nil {
		if role := r.Health.Role.v; role == RolePrimary || role == RoleReplica {
			return OnDownClose
		}
	}
	return defaultOnDown
}

func resolveDiscovery(sc scope, r *rawDiscovery, dns DNS) *Discovery {
	if r == nil {
		return nil
	}
	if r.Type != nil {
		d := &Discovery{}
		resolveDNSDiscovery(sc, d, r, dns)
		return d
	}
	d := &Discovery{
		Master:   get(sc, "discovery.master", r.Master, ""),
		Role:     get(sc, "discovery.role", r.Role, RolePrimary),
		Password: get(sc, "discovery.password", r.Password, Secret{}),
	}
	for _, text := range get(sc, "discovery.sentinel", r.Sentinel, nil) {
		ap, err := parseAddrPort(text)
		if err != nil {
			sc.addf("discovery.sentinel", "%v", err)
			continue
		}
		d.Sentinel = append(d.Sentinel, ap)
	}
	return d
}

// validateRoles checks the database role keys of [frontend.health] and
// the checks that read a password.
func validateRoles(h Health, sc scope) {
	db := h.Check == CheckPostgres || h.Check == CheckMySQL || h.Check == CheckRedis
	if !h.Password.IsZero() && !db {
		sc.addf("health.password", "only applies to checks postgres, mysql and redis; got check %q", h.Check)
	}
	if h.Role == "" {
		if h.MaxLag != 0 {
			sc.addf("health.max_lag", `needs health.role "replica" or "any"`)
		}
		if h.MaxLagBytes != 0 {
			sc.addf("health.max_lag_bytes", `needs health.role "replica" or "any"`)
		}
		return
	}
	sc.oneOf("health.role", h.Role, RoleAny, RolePrimary, RoleReplica)
	switch {
	case h.Check == CheckHTTP:
		sc.addf("health.role", `only applies to checks postgres, mysql and redis; for Patroni's REST API use check "http" with path "/primary" or "/replica"`)
	case !db:
		sc.addf("health.role", "only applies to checks postgres, mysql and redis; got check %q", h.Check)
	}
	if h.MaxLag < 0 {
		sc.addf("health.max_lag", "must not be negative, got %v", h.MaxLag)
	}
	if h.MaxLagBytes < 0 {
		sc.addf("health.max_lag_bytes", "must not be negative, got %d", h.MaxLagBytes)
	}
	if h.Role == RolePrimary {
		if h.MaxLag != 0 {
			sc.addf("health.max_lag", `a primary has no lag: needs health.role "replica" or "any"`)
		}
		if h.MaxLagBytes != 0 {
			sc.addf("health.max_lag_bytes", `a primary has no lag: needs health.role "replica" or "any"`)
		}
	}
	if h.MaxLag != 0 && h.Check != CheckPostgres && db {
		hint := ""
		if h.Check == CheckRedis {
			hint = "; redis measures lag in bytes: use max_lag_bytes"
		}
		sc.addf("health.max_lag", "only applies to check postgres%s", hint)
	}
	if h.MaxLagBytes != 0 && h.Check != CheckRedis && db {
		hint := ""
		if h.Check == CheckPostgres {
			hint = "; postgres measures replay lag in time: use max_lag"
		}
		sc.addf("health.max_lag_bytes", "only applies to check redis%s", hint)
	}
}

// validateDiscovery checks a frontend whose backends come from discovery:
// no [[frontend.backend]] of its own, and a complete source; Sentinel
// feeds only TCP frontends.
func validateDiscovery(f *Frontend, r *rawFrontend, sc scope) {
	d := f.Discovery
	if len(r.Backends) > 0 {
		sc.addf("backend[0]", "the backends come from discovery: remove the [[frontend.backend]] tables")
	}
	rd := r.Discovery
	if rd.Type != nil {
		validateDNSDiscovery(d, rd, sc)
		return
	}
	for _, k := range []struct {
		field string
		set   bool
	}{{"name", rd.Name != nil}, {"port", rd.Port != nil}, {"resolvers", rd.Resolvers != nil}, {"timeout", rd.Timeout != nil},
		{"interval", rd.Interval != nil}, {"min_interval", rd.MinInterval != nil}, {"max_interval", rd.MaxInterval != nil}} {
		if k.set {
			sc.addf("discovery."+k.field, `only applies to DNS discovery: set type = "srv", "a" or "aaaa"`)
		}
	}
	if f.Protocol != ProtocolTCP {
		sc.addf("discovery", "only applies to tcp frontends")
	}
	if len(d.Sentinel) == 0 && (rd.Sentinel == nil || rd.Sentinel.err == nil) {
		sc.addf("discovery.sentinel", `required: at least one Sentinel IP:port, such as "10.0.0.21:26379"`)
	}
	seen := make(map[netip.AddrPort]bool, len(d.Sentinel))
	for _, a := range d.Sentinel {
		switch {
		case seen[a]:
			sc.addf("discovery.sentinel", "%v is listed twice", a)
		case a.Addr().IsUnspecified() || a.Port() == 0:
			sc.addf("discovery.sentinel", "%v is not a destination; give the Sentinel's own IP and port", a)
		}
		seen[a] = true
	}
	if d.Master == "" && (rd.Master == nil || rd.Master.err == nil) {
		sc.addf("discovery.master", "required: the name of the master set the Sentinels monitor")
	}
	sc.oneOf("discovery.role", d.Role, RolePrimary, RoleReplica)
}
