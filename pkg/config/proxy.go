package config

import (
	"fmt"
	"time"
)

// PROXY protocol versions accepted by Frontend.SendProxy and
// Backend.SendProxy.
const (
	ProxyNone = "none"
	ProxyV1   = "v1"
	ProxyV2   = "v2"
)

// The optional v2 TLVs accepted by Frontend.SendProxyTLVs.
const (
	// ProxyTLVUniqueID sends the connection's ID, the one the admin API
	// lists, in decimal (PP2_TYPE_UNIQUE_ID).
	ProxyTLVUniqueID = "unique_id"
	// ProxyTLVAuthority sends the frontend's name (PP2_TYPE_AUTHORITY).
	ProxyTLVAuthority = "authority"
	// ProxyTLVCRC32C protects the header with a CRC32c checksum
	// (PP2_TYPE_CRC32C).
	ProxyTLVCRC32C = "crc32c"
)

// A sender writes its header with the connection's first bytes: a few
// seconds cover a retransmitted SYN-ACK and a slow first segment, and bound
// how long a silent client holds a connection slot.
const defaultProxyHeaderTimeout = 5 * time.Second

// resolveProxy fills f's PROXY protocol keys from r, and gives every
// backend that does not set send_proxy the frontend's.
func resolveProxy(sc scope, r *rawFrontend, f *Frontend) {
	f.SendProxy = get(sc, "send_proxy", r.SendProxy, ProxyNone)
	f.SendProxyTLVs = get(sc, "send_proxy_tlvs", r.SendProxyTLVs, nil)
	f.AcceptProxy = get(sc, "accept_proxy", r.AcceptProxy, false)
	f.AcceptProxyFrom = resolvePrefixes(sc, "accept_proxy_from", r.AcceptProxyFrom)
	f.AcceptProxyOptional = get(sc, "accept_proxy_optional", r.AcceptProxyOptional, false)
	f.ProxyHeaderTimeout = get(sc, "proxy_header_timeout", r.ProxyHeaderTimeout, defaultProxyHeaderTimeout)
	for j := range f.Backends {
		if j < len(r.Backends) {
			f.Backends[j].SendProxy = get(sc, fmt.Sprintf("backend[%d].send_proxy", j), r.Backends[j].SendProxy, f.SendProxy)
		}
	}
}

// validateProxy checks the PROXY protocol keys: known values, sending on
// TCP only, TLVs only where a v2 header goes out, and accepting only from
// the senders named.
func validateProxy(f *Frontend, r *rawFrontend, sc scope) {
	versions := []string{ProxyNone, ProxyV1, ProxyV2}
	sc.oneOf("send_proxy", f.SendProxy, versions...)
	v2 := f.SendProxy == ProxyV2
	for j, b := range f.Backends {
		if j < len(r.Backends) && r.Backends[j].SendProxy != nil {
			field := fmt.Sprintf("backend[%d].send_proxy", j)
			sc.oneOf(field, b.SendProxy, versions...)
			if f.Protocol == ProtocolUDP {
				sc.addf(field, "only applies to tcp frontends")
			}
		}
		v2 = v2 || b.SendProxy == ProxyV2
	}
	if f.Protocol == ProtocolUDP {
		for _, o := range []struct {
			field string
			set   bool
		}{
			{"send_proxy", r.SendProxy != nil},
			{"send_proxy_tlvs", r.SendProxyTLVs != nil},
			{"proxy_header_timeout", r.ProxyHeaderTimeout != nil},
		} {
			if o.set {
				sc.addf(o.field, "only applies to tcp frontends")
			}
		}
	}
	seen := make(map[string]bool)
	for _, name := range f.SendProxyTLVs {
		sc.oneOf("send_proxy_tlvs", name, ProxyTLVUniqueID, ProxyTLVAuthority, ProxyTLVCRC32C)
		if seen[name] {
			sc.addf("send_proxy_tlvs", "%q is listed twice", name)
		}
		seen[name] = true
	}
	if len(f.SendProxyTLVs) > 0 && !v2 && f.Protocol == ProtocolTCP {
		sc.addf("send_proxy_tlvs", `only applies where send_proxy is "v2" (on the frontend or a backend)`)
	}

	if !f.AcceptProxy {
		for _, o := range []struct {
			field string
			set   bool
		}{
			{"accept_proxy_from", r.AcceptProxyFrom != nil},
			{"accept_proxy_optional", r.AcceptProxyOptional != nil},
			{"proxy_header_timeout", r.ProxyHeaderTimeout != nil && f.Protocol == ProtocolTCP},
		} {
			if o.set {
				sc.addf(o.field, "only applies with accept_proxy = true")
			}
		}
		return
	}
	if r.AcceptProxyFrom == nil || r.AcceptProxyFrom.err == nil && len(r.AcceptProxyFrom.v) == 0 {
		sc.addf("accept_proxy_from", `required with accept_proxy: the networks of the proxies trusted to send the header, such as "10.0.0.0/24" (write "0.0.0.0/0" and "::/0" to trust any sender)`)
	}
	sc.positive("proxy_header_timeout", f.ProxyHeaderTimeout)
}
