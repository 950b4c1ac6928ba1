package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// DNS record types accepted by Discovery.Type.
const (
	// DiscoverySRV takes host, port, priority and weight from SRV records.
	DiscoverySRV = "srv"
	// DiscoveryA takes the IPv4 addresses of A records, with Discovery.Port.
	DiscoveryA = "a"
	// DiscoveryAAAA takes the IPv6 addresses of AAAA records, with
	// Discovery.Port.
	DiscoveryAAAA = "aaaa"
)

// Defaults and bounds of the DNS settings.
const (
	defaultDNSTimeout     = time.Second
	defaultDNSInterval    = 5 * time.Second
	defaultDNSMinInterval = time.Second
	defaultDNSMaxInterval = 30 * time.Second
	// minDNSInterval keeps a TTL of 0 (Consul's default) or a typo from
	// turning discovery into a query flood.
	minDNSInterval = 100 * time.Millisecond
	maxDNSTimeout  = 30 * time.Second
	maxDNSInterval = 24 * time.Hour
	maxResolvers   = 8
	// maxHostLen is the longest DNS name in text form (RFC 1035).
	maxHostLen = 253
)

// DNS says how splicer resolves names ([dns]): the backends given by host
// name, and the DNS discovery of frontends, whose discovery table may set
// each key for itself.
//
// A good answer is asked again when its TTL runs out, but no sooner than
// MinInterval and no later than MaxInterval; a failed lookup, or one that
// found nothing, is retried every Interval while the last good answer
// serves on.
type DNS struct {
	// Resolvers are the DNS servers asked, in order, until one answers;
	// empty means the nameservers of /etc/resolv.conf, read when discovery
	// starts.
	Resolvers []netip.AddrPort
	// Timeout bounds one query to one resolver.
	Timeout time.Duration
	// Interval is the pause after a failed or empty lookup.
	Interval time.Duration
	// MinInterval and MaxInterval bound the TTL of a good answer.
	// MaxInterval also bounds how long an SRV target whose address
	// lookups keep failing, while the others answer, keeps its last
	// addresses.
	MinInterval time.Duration
	MaxInterval time.Duration
}

// rawDNS is [dns]; the DNS keys of a discovery table are the same.
type rawDNS struct {
	Resolvers   *listSetting     `toml:"resolvers"`
	Timeout     *durationSetting `toml:"timeout"`
	Interval    *durationSetting `toml:"interval"`
	MinInterval *durationSetting `toml:"min_interval"`
	MaxInterval *durationSetting `toml:"max_interval"`
}

// resolveDNS reads DNS keys under prefix ("" for [dns], "discovery." in a
// frontend), each defaulting to def's.
func resolveDNS(sc scope, prefix string, r *rawDNS, def DNS) DNS {
	if r == nil {
		r = &rawDNS{}
	}
	d := DNS{
		Timeout:     get(sc, prefix+"timeout", r.Timeout, def.Timeout),
		Interval:    get(sc, prefix+"interval", r.Interval, def.Interval),
		MinInterval: get(sc, prefix+"min_interval", r.MinInterval, def.MinInterval),
		MaxInterval: get(sc, prefix+"max_interval", r.MaxInterval, def.MaxInterval),
		Resolvers:   def.Resolvers,
	}
	if r.Resolvers != nil {
		d.Resolvers = nil
		for _, text := range get(sc, prefix+"resolvers", r.Resolvers, nil) {
			ap, err := parseAddrPort(text)
			if err != nil {
				sc.addf(prefix+"resolvers", "%v", err)
				continue
			}
			d.Resolvers = append(d.Resolvers, ap)
		}
	}
	return d
}

// defaultDNS is [dns] when the file leaves it out.
func defaultDNS() DNS {
	return DNS{Timeout: defaultDNSTimeout, Interval: defaultDNSInterval,
		MinInterval: defaultDNSMinInterval, MaxInterval: defaultDNSMaxInterval}
}

func validateDNS(d DNS, sc scope, prefix string) {
	sc.durationBetween(prefix+"timeout", d.Timeout, minDNSInterval, maxDNSTimeout)
	sc.durationBetween(prefix+"interval", d.Interval, minDNSInterval, maxDNSInterval)
	sc.durationBetween(prefix+"min_interval", d.MinInterval, minDNSInterval, maxDNSInterval)
	sc.durationBetween(prefix+"max_interval", d.MaxInterval, minDNSInterval, maxDNSInterval)
	if d.MinInterval > d.MaxInterval {
		sc.addf(prefix+"min_interval", "%v is above max_interval %v", d.MinInterval, d.MaxInterval)
	}
	if len(d.Resolvers) > maxResolvers {
		sc.addf(prefix+"resolvers", "at most %d resolvers, got %d", maxResolvers, len(d.Resolvers))
	}
	seen := make(map[netip.AddrPort]bool, len(d.Resolvers))
	for _, a := range d.Resolvers {
		switch {
		case seen[a]:
			sc.addf(prefix+"resolvers", "%v is listed twice", a)
		case a.Addr().IsUnspecified() || a.Port() == 0:
			sc.addf(prefix+"resolvers", "%v is not a destination; give the resolver's own IP and port, such as \"127.0.0.53:53\"", a)
		}
		seen[a] = true
	}
}

// resolveDNSDiscovery fills the DNS keys of a discovery table.
func resolveDNSDiscovery(sc scope, d *Discovery, r *rawDiscovery, def DNS) {
	d.Type = get(sc, "discovery.type", r.Type, "")
	d.Name = get(sc, "discovery.name", r.Name, "")
	d.Port = get(sc, "discovery.port", r.Port, 0)
	d.DNS = resolveDNS(sc, "discovery.", &rawDNS{Resolvers: r.Resolvers, Timeout: r.Timeout,
		Interval: r.Interval, MinInterval: r.MinInterval, MaxInterval: r.MaxInterval}, def)
}

// validateDNSDiscovery checks a discovery table with a type: a record
// type, a name, a port where the records carry none, and no Sentinel key.
func validateDNSDiscovery(d *Discovery, r *rawDiscovery, sc scope) {
	sc.oneOf("discovery.type", d.Type, DiscoverySRV, DiscoveryA, DiscoveryAAAA)
	for _, k := range []struct {
		field string
		set   bool
	}{{"sentinel", r.Sentinel != nil}, {"master", r.Master != nil}, {"role", r.Role != nil}, {"password", r.Password != nil}} {
		if k.set {
			sc.addf("discovery."+k.field, "only applies to Redis Sentinel discovery, which has no type; this one has type %q", d.Type)
		}
	}
	switch {
	case r.Name == nil:
		sc.addf("discovery.name", `required: the DNS name to look up, such as "_pg._tcp.db.service.consul"`)
	case r.Name.err == nil:
		if err := checkHost(d.Name); err != nil {
			sc.addf("discovery.name", "%v", err)
		}
	}
	switch {
	case d.Type == DiscoverySRV && r.Port != nil:
		sc.addf("discovery.port", "SRV records carry their port: remove it")
	case d.Type != DiscoverySRV && r.Port == nil:
		sc.addf("discovery.port", "required with type %q: the port to connect to on the addresses found", d.Type)
	case r.Port != nil:
		sc.between("discovery.port", d.Port, 1, 65535)
	}
	validateDNS(d.DNS, sc, "discovery.")
}

// hostAddress is a backend address given by host name: the host and the
// port.
type hostAddress struct {
	host string
	port uint16
}

// parseBackendAddress reads a backend's address: IP:port, or host:port
// with a DNS name, which the daemon resolves and keeps resolving. The
// errors say what to write instead.
func parseBackendAddress(s string) (netip.AddrPort, hostAddress, error) {
	ap, err := parseAddrPort(s)
	if _, ierr := netip.ParseAddr(s); err == nil || ierr == nil {
		return ap, hostAddress{}, err
	}
	host, port, serr := net.SplitHostPort(s)
	switch {
	case serr != nil && strings.Count(s, ":") == 0 && checkHost(s) == nil:
		return netip.AddrPort{}, hostAddress{}, fmt.Errorf(`%q has no port; write host:port, such as "db1.internal:5432"`, s)
	case serr != nil || host == "" || strings.ContainsAny(host, ":[]%"):
		return netip.AddrPort{}, hostAddress{}, err
	}
	if _, perr := netip.ParseAddr(host); perr == nil {
		return netip.AddrPort{}, hostAddress{}, err
	}
	if herr := checkHost(host); herr != nil {
		return netip.AddrPort{}, hostAddress{}, fmt.Errorf("%q: %v", s, herr)
	}
	n, perr := strconv.ParseUint(port, 10, 16)
	if perr != nil || n == 0 || strings.Trim(port, "0123456789") != "" {
		return netip.AddrPort{}, hostAddress{}, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	// DNS names are case-insensitive: one spelling, so that duplicates
	// show and names stay stable.
	return netip.AddrPort{}, hostAddress{host: strings.ToLower(strings.TrimSuffix(host, ".")), port: uint16(n)}, nil
}

// checkHost checks a DNS name as splicer looks it up: labels of letters,
// digits, '-' and '_' (SRV names start with "_service._proto"), 1 to 63
// bytes each, 253 in all; a final dot is allowed. Names are absolute:
// search domains are not applied.
func checkHost(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > maxHostLen {
		return fmt.Errorf("%q is not a DNS name: 1 to %d characters", name, maxHostLen)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a DNS name: each label between dots is 1 to 63 characters", name)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a DNS name: %q is not a letter, digit, '-' or '_'", name, c)
			}
		}
	}
	return nil
}
