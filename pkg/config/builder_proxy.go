package config

import "time"

// SendProxy sets send_proxy: ProxyNone, ProxyV1 or ProxyV2 (TCP only).
func (f *FrontendBuilder) SendProxy(version string) *FrontendBuilder {
	f.raw().SendProxy = &stringSetting{v: version}
	return f
}

// SendProxyTLVs adds to send_proxy_tlvs: ProxyTLVUniqueID,
// ProxyTLVAuthority, ProxyTLVCRC32C.
func (f *FrontendBuilder) SendProxyTLVs(names ...string) *FrontendBuilder {
	r := f.raw()
	if r.SendProxyTLVs == nil {
		r.SendProxyTLVs = &listSetting{}
	}
	r.SendProxyTLVs.v = append(r.SendProxyTLVs.v, names...)
	return f
}

// AcceptProxy sets accept_proxy = true and adds the senders it trusts to
// accept_proxy_from (CIDR prefixes or IPs).
func (f *FrontendBuilder) AcceptProxy(from ...string) *FrontendBuilder {
	r := f.raw()
	r.AcceptProxy = &boolSetting{v: true}
	if r.AcceptProxyFrom == nil {
		r.AcceptProxyFrom = &listSetting{}
	}
	r.AcceptProxyFrom.v = append(r.AcceptProxyFrom.v, from...)
	return f
}

// AcceptProxyOptional sets accept_proxy_optional.
func (f *FrontendBuilder) AcceptProxyOptional(on bool) *FrontendBuilder {
	f.raw().AcceptProxyOptional = &boolSetting{v: on}
	return f
}

// ProxyHeaderTimeout sets proxy_header_timeout (TCP only).
func (f *FrontendBuilder) ProxyHeaderTimeout(d time.Duration) *FrontendBuilder {
	f.raw().ProxyHeaderTimeout = &durationSetting{v: d}
	return f
}
