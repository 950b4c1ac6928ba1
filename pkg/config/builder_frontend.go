package config

import "time"

// FrontendBuilder sets the keys of one [[frontend]]; its methods mirror the
// TOML keys (see docs/configuration.md). Frontend and Build continue with
// the parent Builder, so a whole config reads as one chain.
type FrontendBuilder struct {
	b     *Builder
	index int
}

// Frontend starts the next frontend; see Builder.Frontend.
func (f *FrontendBuilder) Frontend(name string) *FrontendBuilder {
	return f.b.Frontend(name)
}

// Build builds the whole config; see Builder.Build.
func (f *FrontendBuilder) Build() (*Config, error) {
	return f.b.Build()
}

// raw returns this frontend's settings. It is looked up on every call
// because appending frontends may move the slice.
func (f *FrontendBuilder) raw() *rawFrontend {
	return &f.b.raw.Frontends[f.index]
}

// Listen adds listen addresses (IP:port, IPv6 in brackets).
func (f *FrontendBuilder) Listen(addrs ...string) *FrontendBuilder {
	r := f.raw()
	if r.Listen == nil {
		r.Listen = &listSetting{}
	}
	r.Listen.v = append(r.Listen.v, addrs...)
	return f
}

// Protocol sets protocol: ProtocolTCP or ProtocolUDP.
func (f *FrontendBuilder) Protocol(p string) *FrontendBuilder {
	f.raw().Protocol = &stringSetting{v: p}
	return f
}

// Strategy sets strategy: one of the Strategy* constants.
func (f *FrontendBuilder) Strategy(s string) *FrontendBuilder {
	f.raw().Strategy = &stringSetting{v: s}
	return f
}

// MaglevTableSize sets maglev_table_size.
func (f *FrontendBuilder) MaglevTableSize(n int) *FrontendBuilder {
	f.raw().MaglevTableSize = &intSetting{v: n}
	return f
}

// MaxConnections sets the frontend's max_connections.
func (f *FrontendBuilder) MaxConnections(n int) *FrontendBuilder {
	f.raw().MaxConnections = &intSetting{v: n}
	return f
}

// MaxQueue sets max_queue (TCP only).
func (f *FrontendBuilder) MaxQueue(n int) *FrontendBuilder {
	f.raw().MaxQueue = &intSetting{v: n}
	return f
}

// QueueTimeout sets queue_timeout (TCP only).
func (f *FrontendBuilder) QueueTimeout(d time.Duration) *FrontendBuilder {
	f.raw().QueueTimeout = &durationSetting{v: d}
	return f
}

// ConnectTimeout sets connect_timeout.
func (f *FrontendBuilder) ConnectTimeout(d time.Duration) *FrontendBuilder {
	f.raw().ConnectTimeout = &durationSetting{v: d}
	return f
}

// IdleTimeout sets idle_timeout.
func (f *FrontendBuilder) IdleTimeout(d time.Duration) *FrontendBuilder {
	f.raw().IdleTimeout = &durationSetting{v: d}
	return f
}

// HalfCloseTimeout sets half_close_timeout (TCP only).
func (f *FrontendBuilder) HalfCloseTimeout(d time.Duration) *FrontendBuilder {
	f.raw().HalfCloseTimeout = &durationSetting{v: d}
	return f
}

// Retries sets retries (TCP only).
func (f *FrontendBuilder) Retries(n int) *FrontendBuilder {
	f.raw().Retries = &intSetting{v: n}
	return f
}

// TCPKeepalive sets tcp_keepalive (TCP only).
func (f *FrontendBuilder) TCPKeepalive(on bool) *FrontendBuilder {
	f.raw().TCPKeepalive = &boolSetting{v: on}
	return f
}

// KeepaliveIdle sets keepalive_idle (TCP only).
func (f *FrontendBuilder) KeepaliveIdle(d time.Duration) *FrontendBuilder {
	f.raw().KeepaliveIdle = &durationSetting{v: d}
	return f
}

// KeepaliveInterval sets keepalive_interval (TCP only).
func (f *FrontendBuilder) KeepaliveInterval(d time.Duration) *FrontendBuilder {
	f.raw().KeepaliveInterval = &durationSetting{v: d}
	return f
}

// KeepaliveCount sets keepalive_count (TCP only).
func (f *FrontendBuilder) KeepaliveCount(n int) *FrontendBuilder {
	f.raw().KeepaliveCount = &intSetting{v: n}
	return f
}

// Allow adds entries (CIDR prefixes or IPs) to the allow list.
func (f *FrontendBuilder) Allow(cidrs ...string) *FrontendBuilder {
	r := f.raw()
	if r.Allow == nil {
		r.Allow = &listSetting{}
	}
	r.Allow.v = append(r.Allow.v, cidrs...)
	return f
}

// Deny adds entries (CIDR prefixes or IPs) to the deny list.
func (f *FrontendBuilder) Deny(cidrs ...string) *FrontendBuilder {
	r := f.raw()
	if r.Deny == nil {
		r.Deny = &listSetting{}
	}
	r.Deny.v = append(r.Deny.v, cidrs...)
	return f
}

// MaxConnectionsPerClient sets max_connections_per_client.
func (f *FrontendBuilder) MaxConnectionsPerClient(n int) *FrontendBuilder {
	f.raw().MaxConnectionsPerClient = &intSetting{v: n}
	return f
}

// ConnectionRatePerClient sets connection_rate_per_client.
func (f *FrontendBuilder) ConnectionRatePerClient(perSecond int) *FrontendBuilder {
	f.raw().ConnectionRatePerClient = &intSetting{v: perSecond}
	return f
}

// SlowStart sets slow_start.
func (f *FrontendBuilder) SlowStart(d time.Duration) *FrontendBuilder {
	f.raw().SlowStart = &durationSetting{v: d}
	return f
}

// OnDown sets on_down: OnDownKeep or OnDownClose (TCP only).
func (f *FrontendBuilder) OnDown(action string) *FrontendBuilder {
	f.raw().OnDown = &stringSetting{v: action}
	return f
}

// Responses sets responses (UDP only).
func (f *FrontendBuilder) Responses(n int) *FrontendBuilder {
	f.raw().Responses = &intSetting{v: n}
	return f
}

// ReceiveBuffer sets receive_buffer (UDP only), in bytes.
func (f *FrontendBuilder) ReceiveBuffer(bytes int) *FrontendBuilder {
	f.raw().ReceiveBuffer = &sizeSetting{v: bytes}
	return f
}

// MaxFlows sets max_flows (UDP only).
func (f *FrontendBuilder) MaxFlows(n int) *FrontendBuilder {
	f.raw().MaxFlows = &intSetting{v: n}
	return f
}

// BackendOptions are the optional keys of a [[frontend.backend]]. A zero
// field leaves its key unset, which is also its default.
type BackendOptions struct {
	Name           string
	MaxConnections int
	Backup         bool
	SendProxy      string // send_proxy: ProxyNone, ProxyV1 or ProxyV2
}

// Backend adds a [[frontend.backend]] with an address (IP:port) and a
// weight.
func (f *FrontendBuilder) Backend(addr string, weight int) *FrontendBuilder {
	r := f.raw()
	r.Backends = append(r.Backends, rawBackend{
		Address: &stringSetting{v: addr},
		Weight:  &intSetting{v: weight},
	})
	return f
}

// BackendOpts sets the optional keys of the backend added last; called
// before any Backend, it is reported by Build.
func (f *FrontendBuilder) BackendOpts(o BackendOptions) *FrontendBuilder {
	r := f.raw()
	if len(r.Backends) == 0 {
		name := ""
		if r.Name != nil {
			name = r.Name.v
		}
		frontendScope(&f.b.misuse, f.index, name).addf("backend", "BackendOpts called before any Backend")
		return f
	}
	last := &r.Backends[len(r.Backends)-1]
	if o.Name != "" {
		last.Name = &stringSetting{v: o.Name}
	}
	if o.MaxConnections != 0 {
		last.MaxConnections = &intSetting{v: o.MaxConnections}
	}
	if o.Backup {
		last.Backup = &boolSetting{v: true}
	}
	if o.SendProxy != "" {
		last.SendProxy = &stringSetting{v: o.SendProxy}
	}
	return f
}
