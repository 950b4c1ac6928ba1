package config

import (
	"net/netip"
	"time"
)

// DNSOptions are the keys of [dns], and the DNS keys of a discovery table.
// A zero field leaves its key unset.
type DNSOptions struct {
	Resolvers   []netip.AddrPort
	Timeout     time.Duration
	Interval    time.Duration
	MinInterval time.Duration
	MaxInterval time.Duration
}

// raw returns the settings o sets.
func (o DNSOptions) raw() *rawDNS {
	r := &rawDNS{}
	if o.Resolvers != nil {
		list := make([]string, len(o.Resolvers))
		for i, a := range o.Resolvers {
			list[i] = a.String()
		}
		r.Resolvers = &listSetting{v: list}
	}
	duration := func(d time.Duration) *durationSetting {
		if d == 0 {
			return nil
		}
		return &durationSetting{v: d}
	}
	r.Timeout, r.Interval = duration(o.Timeout), duration(o.Interval)
	r.MinInterval, r.MaxInterval = duration(o.MinInterval), duration(o.MaxInterval)
	return r
}

// DNS sets the keys of [dns] that o sets.
func (b *Builder) DNS(o DNSOptions) *Builder {
	b.raw.DNS = o.raw()
	return b
}

// DiscoverDNS sets the frontend's discovery to DNS records: typ is
// DiscoverySRV, DiscoveryA or DiscoveryAAAA, name the name looked up, port
// the port of the addresses found (0 leaves it unset, as SRV needs), and o
// the table's own DNS keys.
func (f *FrontendBuilder) DiscoverDNS(typ, name string, port int, o DNSOptions) *FrontendBuilder {
	r := o.raw()
	d := &rawDiscovery{
		Type: &stringSetting{v: typ}, Name: &stringSetting{v: name},
		Resolvers: r.Resolvers, Timeout: r.Timeout,
		Interval: r.Interval, MinInterval: r.MinInterval, MaxInterval: r.MaxInterval,
	}
	if port != 0 {
		d.Port = &intSetting{v: port}
	}
	f.raw().Discovery = d
	return f
}
