package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// resolvConf is where the system's resolvers are read when the config
// names none; a variable so that tests can point it at a file of theirs.
var resolvConf = "/etc/resolv.conf"

// lookupBudget bounds one name's lookup, SRV targets included, in
// multiples of the query timeout.
const lookupBudget = 20

// lookupHost is the kind of lookup a backend given by host name makes:
// A records, else AAAA records.
const lookupHost = "host"

// DNS keeps a frontend's backends resolved from DNS: the records of its
// discovery table (SRV, A or AAAA), or the host name of each backend
// given as host:port. Every name is asked again when its answer's TTL
// runs out (bounded by the min and max intervals); a failed lookup or an
// empty answer is counted, logged and retried every interval, and the
// name keeps the backends of its last good answer meanwhile, so a DNS
// outage never empties a frontend. An SRV answer some of whose targets
// could not be resolved is applied with the others: a failing target
// keeps its last addresses for up to the max interval (see srvAnswer).
// Create it with NewDNS and run it with Run.
type DNS struct {
	res                        resolver
	interval, minIval, maxIval time.Duration
	log                        zerolog.Logger
	lookups                    []*lookup
	ready                      chan struct{}
	// now is the clock; tests replace it.
	now func() time.Time
	// budget is lookupBudget; tests lower it to keep the budget test
	// short with timeouts long enough for a loaded machine.
	budget int
}

// lookup is one name a DNS source keeps resolved, with what it found.
type lookup struct {
	kind string // config.DiscoverySRV, DiscoveryA, DiscoveryAAAA, or lookupHost
	name string
	port uint16 // of the addresses found (not SRV)
	// host is the backend a host lookup stands for: its name prefixes the
	// names of the backends found, which take its weight, cap and backup
	// flag.
	host config.Backend

	// Owned by Run.
	good []config.Backend // the last good answer's backends
	// targets are the addresses each SRV target had in the last good
	// answer, by target, held for a target whose lookups fail.
	targets map[string]heldTarget
	due     time.Time
	failing string // the failure last logged, "" while it works

	succeeded, partial, failed, empty atomic.Uint64
	lastSuccess                       atomic.Int64 // unix ns; 0: never
	found                             atomic.Int64 // len(good)
}

// heldTarget is what an SRV target stood for in the last good answer.
type heldTarget struct {
	ips []netip.Addr
	// failingSince is when its address lookups started failing, while
	// its ips are held; zero if it resolved.
	failingSince time.Time
}

// answer is what one lookup found.
type answer struct {
	found []config.Backend // sorted by name
	ttl   uint32           // seconds
	// failed are the SRV targets whose address lookup failed, the
	// answer's other targets being applied: a partial answer. targets is
	// lookup.targets once the answer is applied.
	failed  []targetFailure
	targets map[string]heldTarget
}

// targetFailure is an SRV target whose address lookup failed.
type targetFailure struct {
	target string
	err    error
	// held: its last addresses serve on. Else it never resolved, or
	// expired: it has failed for the max interval, and its last addresses
	// are dropped now.
	held, expired bool
}

// NewDNS builds the DNS source of fe, with settings dns for the host
// names of its backends (its discovery table carries its own); nil when
// fe resolves no name. The resolvers default to the nameservers of
// /etc/resolv.conf, read now.
func NewDNS(fe *config.Frontend, dns config.DNS, log zerolog.Logger) (*DNS, error) {
	var lookups []*lookup
	if d := fe.Discovery; d != nil && d.Type != "" {
		dns = d.DNS
		lookups = append(lookups, &lookup{kind: d.Type, name: d.Name, port: uint16(d.Port)})
	}
	for _, b := range fe.Backends {
		if b.Host != "" {
			lookups = append(lookups, &lookup{kind: lookupHost, name: b.Host, port: b.Address.Port(), host: b})
		}
	}
	if len(lookups) == 0 {
		return nil, nil
	}
	servers := dns.Resolvers
	if len(servers) == 0 {
		var err error
		if servers, err = systemResolvers(resolvConf); err != nil {
			return nil, fmt.Errorf("dns.resolvers: none set, and %w", err)
		}
		if len(servers) == 0 {
			return nil, errNoResolver
		}
	}
	return &DNS{
		res:      resolver{servers: slices.Clone(servers), timeout: dns.Timeout},
		interval: dns.Interval, minIval: dns.MinInterval, maxIval: dns.MaxInterval,
		log: log, lookups: lookups, ready: make(chan struct{}), now: time.Now,
		budget: lookupBudget,
	}, nil
}

// Ready is closed once Run has asked every name once and reported.
func (s *DNS) Ready() <-chan struct{} { return s.ready }

// Run resolves until ctx is done, calling report from its own goroutine
// with the complete list of backends found, sorted by name, once every
// name has been asked the first time (even if nothing was found) and
// after that every time the list changes. It returns once ctx is done.
func (s *DNS) Run(ctx context.Context, report func([]config.Backend)) {
	var last []config.Backend
	timer := time.NewTimer(0)
	defer timer.Stop()
	for first := true; ; first = false {
		now := s.now()
		for _, l := range s.lookups {
			if !l.due.After(now) {
				s.refresh(ctx, l)
			}
			if ctx.Err() != nil {
				return
			}
		}
		found := s.backends()
		if first || !slices.Equal(found, last) {
			last = found
			report(found)
		}
		if first {
			close(s.ready)
		}
		next := s.lookups[0].due
		for _, l := range s.lookups[1:] {
			if l.due.Before(next) {
				next = l.due
			}
		}
		timer.Reset(next.Sub(s.now()))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// refresh asks l's name again and keeps what it found, or its last good
// answer when the lookup failed or found nothing.
func (s *DNS) refresh(ctx context.Context, l *lookup) {
	// An SRV answer may need a query per target: bound the whole, so a
	// slow or hostile server cannot hold the source.
	budget := time.Duration(s.budget) * s.res.timeout
	lctx, cancel := context.WithTimeout(ctx, budget)
	ans, err := l.resolve(lctx, &s.res, s.now, s.maxIval)
	// The query that ran into the budget may report its own timeout
	// before the context's timer fires: compare with the deadline.
	deadline, _ := lctx.Deadline()
	overran := !time.Now().Before(deadline)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if overran {
		over := fmt.Errorf("the lookup took longer than %v (%d times dns.timeout)", budget, s.budget)
		if err != nil {
			err = over
		}
		for i, f := range ans.failed {
			if errors.Is(f.err, context.DeadlineExceeded) {
				ans.failed[i].err = over
			}
		}
	}
	now := s.now()
	ev := s.log.Warn().Str("name", l.name).Str("type", l.kind)
	switch {
	case err != nil:
		l.failed.Add(1)
		l.due = now.Add(s.interval)
		if msg := err.Error(); msg != l.failing {
			l.failing = msg
			ev.Err(err).Int("kept", len(l.good)).Msg("DNS lookup failed: the last good backends serve on")
		}
		return
	case len(ans.found) == 0:
		l.empty.Add(1)
		l.due = now.Add(s.interval)
		if msg := "empty answer"; msg != l.failing {
			l.failing = msg
			ev.Int("kept", len(l.good)).Msg("DNS answer empty: the last good backends serve on")
		}
		return
	}
	l.lastSuccess.Store(now.UnixNano())
	l.due = now.Add(min(max(time.Duration(ans.ttl)*time.Second, s.minIval), s.maxIval))
	l.good, l.targets = ans.found, ans.targets
	l.found.Store(int64(len(ans.found)))
	if len(ans.failed) == 0 {
		l.succeeded.Add(1)
		if l.failing != "" {
			l.failing = ""
			s.log.Info().Str("name", l.name).Str("type", l.kind).Int("backends", len(ans.found)).Msg("DNS lookup works again")
		}
		return
	}
	// A partial answer: asked again as soon as a failed one, so that a
	// target back in service is back soon.
	l.partial.Add(1)
	if retry := now.Add(s.interval); retry.Before(l.due) {
		l.due = retry
	}
	for _, f := range ans.failed {
		if f.expired {
			s.log.Warn().Str("name", l.name).Str("type", l.kind).Str("target", f.target).Err(f.err).
				Float64("max_interval_seconds", s.maxIval.Seconds()).Msg("DNS: an SRV target has failed for max_interval: its last addresses are dropped")
		}
	}
	if msg := failureSummary(ans.failed, len(ans.failed)); msg != l.failing {
		l.failing = msg
		var held, out []string
		for _, f := range ans.failed {
			if f.held {
				held = append(held, f.target)
			} else {
				out = append(out, f.target)
			}
		}
		ev.Str("error", failureSummary(ans.failed, 3)).Strs("held", held).Strs("left_out", out).Int("backends", len(ans.found)).
			Msg("DNS lookup failed for some SRV targets: the others apply, a failing target keeps its last addresses for up to max_interval")
	}
}

// failureSummary says what went wrong with the first n failed targets,
// in the order of their names, and how many more failed.
func failureSummary(failed []targetFailure, n int) string {
	fs := slices.SortedFunc(slices.Values(failed), func(a, b targetFailure) int { return strings.Compare(a.target, b.target) })
	var parts []string
	for _, f := range fs[:min(n, len(fs))] {
		parts = append(parts, fmt.Sprintf("SRV target %s: %v", f.target, f.err))
	}
	if more := len(fs) - n; more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, "; ")
}

// resolve looks l's name up and returns the backends it stands for; an
// SRV target whose lookup fails keeps its last addresses until hold has
// passed since its first failure, by the clock now. An SRV answer whose
// every target failed is a failed lookup, and so is one that gives no
// backend because some targets failed.
func (l *lookup) resolve(ctx context.Context, r *resolver, now func() time.Time, hold time.Duration) (answer, error) {
	var ttl ttlMin
	var ans answer
	switch l.kind {
	case config.DiscoverySRV:
		targets, err := r.lookupSRV(ctx, l.name, &ttl)
		if err != nil {
			return answer{}, err
		}
		ans = l.srvAnswer(targets, now(), hold)
		switch {
		case len(ans.failed) == 0:
		case !slices.ContainsFunc(targets, func(t srvTarget) bool { return t.err == nil }):
			return answer{}, fmt.Errorf("every SRV target failed: %s", failureSummary(ans.failed, 3))
		case len(ans.found) == 0:
			// Not an empty answer: what is missing may be there.
			return answer{}, fmt.Errorf("no SRV target gave an address, and some failed: %s", failureSummary(ans.failed, 3))
		}
	case config.DiscoveryA, config.DiscoveryAAAA, lookupHost:
		var ips []netip.Addr
		var err error
		switch l.kind {
		case config.DiscoveryA:
			ips, _, err = r.lookupIP(ctx, l.name, dnsmessage.TypeA, &ttl)
		case config.DiscoveryAAAA:
			ips, _, err = r.lookupIP(ctx, l.name, dnsmessage.TypeAAAA, &ttl)
		default:
			ips, err = r.lookupHost(ctx, l.name, &ttl)
		}
		if err != nil {
			return answer{}, err
		}
		ans.found = l.addrBackends(ips)
	default:
		return answer{}, fmt.Errorf("lookup type %q", l.kind)
	}
	if len(ans.found) > maxFound {
		ans.found = ans.found[:maxFound]
	}
	ans.ttl = ttl.v
	return ans, nil
}

// srvAnswer turns an SRV answer's targets into backends. A target that
// resolved gives its addresses, and one that does not exist or has no
// address gives none (an answer). A target whose address lookup failed
// gives the addresses it had in the last good answer, with its current
// record's port, priority and weight, until it has failed for hold: then,
// like a target that never resolved, it gives none until it resolves. A
// target's memory follows the answer: one that leaves the records is
// forgotten.
func (l *lookup) srvAnswer(targets []srvTarget, now time.Time, hold time.Duration) answer {
	ans := answer{targets: make(map[string]heldTarget, len(targets))}
	var addrs []srvAddr
	failed := make(map[string]bool)
	for _, t := range targets {
		ips := t.ips
		if t.err != nil {
			f := targetFailure{target: t.target, err: t.err}
			h, ok := ans.targets[t.target]
			if !ok {
				h, ok = l.targets[t.target]
				switch {
				case ok && h.failingSince.IsZero():
					h.failingSince = now
				case ok && now.Sub(h.failingSince) >= hold:
					ok, f.expired = false, true
				}
			}
			if ok {
				ips, f.held = h.ips, true
				ans.targets[t.target] = h
			}
			if !failed[t.target] {
				failed[t.target] = true
				ans.failed = append(ans.failed, f)
			}
		} else if len(t.ips) > 0 {
			ans.targets[t.target] = heldTarget{ips: t.ips}
		}
		for _, ip := range ips {
			addrs = append(addrs, srvAddr{addr: netip.AddrPortFrom(ip, t.port), priority: t.priority, weight: t.weight})
		}
	}
	ans.found = srvBackends(addrs)
	return ans
}

// addrBackends turns the addresses of an A, AAAA or host lookup into
// backends: named by address, weight 1, for discovery; named after the
// host's backend, with its settings, for a host name.
func (l *lookup) addrBackends(ips []netip.Addr) []config.Backend {
	seen := make(map[netip.Addr]bool, len(ips))
	var out []config.Backend
	for _, ip := range ips {
		if seen[ip] || !ip.IsValid() || ip.IsUnspecified() {
			continue
		}
		seen[ip] = true
		a := netip.AddrPortFrom(ip, l.port)
		b := config.Backend{Name: a.String(), Address: a, Weight: 1}
		if l.kind == lookupHost {
			b = l.host
			b.Name, b.Address, b.Host = l.host.Name+"/"+ip.String(), a, ""
		}
		out = append(out, b)
	}
	sortBackends(out)
	return out
}

// srvBackends turns SRV addresses into backends named by address: the
// lowest priority is the primary tier and every other one the backups
// (splicer has two tiers), and weights keep their proportions in 1..256,
// a weight of 0 (RFC 2782: "very small chance") becoming 1. An address
// listed twice keeps its best priority, then its largest weight.
func srvBackends(found []srvAddr) []config.Backend {
	if len(found) == 0 {
		return nil
	}
	best := make(map[netip.AddrPort]srvAddr, len(found))
	for _, f := range found {
		if !f.addr.Addr().IsValid() || f.addr.Addr().IsUnspecified() {
			continue
		}
		b, seen := best[f.addr]
		if !seen || f.priority < b.priority || f.priority == b.priority && f.weight > b.weight {
			best[f.addr] = f
		}
	}
	top, heaviest := uint16(0xffff), uint16(0)
	for _, f := range best {
		top = min(top, f.priority)
		heaviest = max(heaviest, f.weight)
	}
	out := make([]config.Backend, 0, len(best))
	for a, f := range best {
		w := int(f.weight)
		if heaviest > backend.MaxWeight {
			w = (w*backend.MaxWeight + int(heaviest)/2) / int(heaviest)
		}
		out = append(out, config.Backend{Name: a.String(), Address: a, Weight: max(w, 1), Backup: f.priority != top})
	}
	sortBackends(out)
	return out
}

// sortBackends orders backends by name: a report does not depend on the
// order of the answer's records.
func sortBackends(bs []config.Backend) {
	slices.SortFunc(bs, func(a, b config.Backend) int { return strings.Compare(a.Name, b.Name) })
}

// backends is every lookup's last good backends, sorted by name; a name
// found twice (two host names on one address keep theirs apart by their
// prefix) is kept once.
func (s *DNS) backends() []config.Backend {
	var out []config.Backend
	for _, l := range s.lookups {
		out = append(out, l.good...)
	}
	sortBackends(out)
	return slices.CompactFunc(out, func(a, b config.Backend) bool { return a.Name == b.Name })
}

// LookupStats counts what one name's lookups did.
type LookupStats struct {
	// Name and Type are what is looked up: Type is "srv", "a", "aaaa", or
	// "host" (A, else AAAA) for a backend given by host name.
	Name, Type string
	// Succeeded, Partial, Failed and Empty count lookups, each in one:
	// with backends; with backends, but the address lookup of one SRV
	// target or more failed (each keeps its last addresses for up to the
	// max interval); failed (every resolver, or every SRV target); and
	// answered with nothing.
	Succeeded, Partial, Failed, Empty uint64
	// LastSuccess is when a lookup last found backends (in full or in
	// part); zero if never.
	LastSuccess time.Time
	// Backends is how many backends the last good answer holds: the ones
	// serving.
	Backends int
}

// Stats returns the counts of every name, safe to call while Run runs.
func (s *DNS) Stats() []LookupStats {
	out := make([]LookupStats, len(s.lookups))
	for i, l := range s.lookups {
		out[i] = LookupStats{Name: l.name, Type: l.kind,
			Succeeded: l.succeeded.Load(), Partial: l.partial.Load(), Failed: l.failed.Load(), Empty: l.empty.Load(),
			Backends: int(l.found.Load())}
		if ns := l.lastSuccess.Load(); ns != 0 {
			out[i].LastSuccess = time.Unix(0, ns)
		}
	}
	return out
}

// Source finds a frontend's backends outside the config: DNS or Redis
// Sentinel. The daemon merges what it reports into the frontend's backends
// by identity, as a reload does.
type Source interface {
	// Run reports, from its own goroutine and until ctx is done, the
	// complete list of backends found, each time it changes. It returns
	// once ctx is done and nothing of it runs any more.
	Run(ctx context.Context, report func([]config.Backend))
	// Ready is closed once Run has reported for the first time.
	Ready() <-chan struct{}
}

// NewSource builds the source of fe's backends: Sentinel or DNS
// discovery, or the resolution of its backends given by host name (with
// settings dns); nil when fe has none of these.
func NewSource(fe *config.Frontend, dns config.DNS, log zerolog.Logger) (Source, error) {
	if d := fe.Discovery; d != nil && d.Type == "" {
		return NewSentinel(d, log)
	}
	s, err := NewDNS(fe, dns, log)
	if s == nil || err != nil {
		return nil, err
	}
	return s, nil
}

var (
	_ Source = (*DNS)(nil)
	_ Source = (*Sentinel)(nil)
)
