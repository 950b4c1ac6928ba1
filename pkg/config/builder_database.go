package config

import (
	"net/netip"
	"time"
)

// HealthRole sets health.role: RoleAny, RolePrimary or RoleReplica.
func (f *FrontendBuilder) HealthRole(role string) *FrontendBuilder {
	f.health().Role = &stringSetting{v: role}
	return f
}

// HealthMaxLag sets health.max_lag.
func (f *FrontendBuilder) HealthMaxLag(d time.Duration) *FrontendBuilder {
	f.health().MaxLag = &durationSetting{v: d}
	return f
}

// HealthMaxLagBytes sets health.max_lag_bytes.
func (f *FrontendBuilder) HealthMaxLagBytes(n int) *FrontendBuilder {
	f.health().MaxLagBytes = &sizeSetting{v: n}
	return f
}

// DiscoveryOptions are the optional keys of a frontend's discovery table.
type DiscoveryOptions struct {
	// Role is discovery.role; "" leaves the default (RolePrimary).
	Role string
	// Password is discovery.password; the zero Secret leaves it unset.
	Password Secret
}

// DiscoverSentinel sets the frontend's discovery to the Redis Sentinels at
// addrs watching master (discovery.sentinel and discovery.master), with
// opts.
func (f *FrontendBuilder) DiscoverSentinel(master string, addrs []netip.AddrPort, opts DiscoveryOptions) *FrontendBuilder {
	list := make([]string, len(addrs))
	for i, a := range addrs {
		list[i] = a.String()
	}
	d := &rawDiscovery{
		Sentinel: &listSetting{v: list},
		Master:   &stringSetting{v: master},
	}
	if opts.Role != "" {
		d.Role = &stringSetting{v: opts.Role}
	}
	if !opts.Password.IsZero() {
		d.Password = &secretSetting{v: opts.Password}
	}
	f.raw().Discovery = d
	return f
}
