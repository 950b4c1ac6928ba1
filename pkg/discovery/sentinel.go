package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
)

// Timing of a Sentinel watch.
const (
	// requestTimeout bounds a connect and one request to a Sentinel.
	requestTimeout = time.Second
	// refreshInterval is how often the state is asked again while no event
	// comes: a safety net for events lost while reconnecting, and the
	// check that the subscribed Sentinel is still alive.
	refreshInterval = 5 * time.Second
	// retryInterval is the pause after every Sentinel of the list failed.
	retryInterval = time.Second
)

// Sentinel follows one master set through Redis Sentinel. It subscribes to
// a Sentinel's events and, on any event about the master set (+switch-master
// above all), asks that Sentinel for the master's address (or the list of
// its replicas) on a second connection and reports it. When the Sentinel
// goes quiet or away it moves to the next one of the list. Create it with
// NewSentinel and run it with Run.
type Sentinel struct {
	addrs    []netip.AddrPort
	master   string
	replicas bool
	auth     []byte // the AUTH command; nil without a password
	log      zerolog.Logger

	// Overridable by tests.
	timeout, refresh, retry time.Duration

	ready chan struct{} // closed at the first report
}

// NewSentinel builds the watch of d, a discovery with Sentinel addresses,
// reading its password now. The error names the failed config key.
func NewSentinel(d *config.Discovery, log zerolog.Logger) (*Sentinel, error) {
	if len(d.Sentinel) == 0 || d.Master == "" {
		return nil, errors.New("discovery: no Sentinel address or no master name")
	}
	b, err := d.Password.Read()
	if err != nil {
		return nil, fmt.Errorf("discovery.password: %w", err)
	}
	pw := string(b)
	s := &Sentinel{
		addrs:    slices.Clone(d.Sentinel),
		master:   d.Master,
		replicas: d.Role == config.RoleReplica,
		log:      log,
		timeout:  requestTimeout,
		refresh:  refreshInterval,
		retry:    retryInterval,
		ready:    make(chan struct{}),
	}
	if pw != "" {
		s.auth = resp.Command("AUTH", pw)
	}
	return s, nil
}

// Ready is closed once Run has reported the backends for the first time.
func (s *Sentinel) Ready() <-chan struct{} { return s.ready }

// Run watches until ctx is done, calling report from its own goroutine
// with the complete list of backends every time it changes (the master
// alone, or the replicas Sentinel does not hold down, sorted), each named
// after its address, which is its identity across changes, with weight 1.
// It returns once ctx is done and nothing of it runs any more.
func (s *Sentinel) Run(ctx context.Context, report func([]config.Backend)) {
	var last []netip.AddrPort
	reported := false
	// failing holds the last error logged per Sentinel, so a Sentinel that
	// stays down is logged once, not on every retry.
	failing := make(map[netip.AddrPort]string)
	publish := func(addrs []netip.AddrPort) {
		if reported && slices.Equal(addrs, last) {
			return
		}
		if !reported {
			reported = true
			defer close(s.ready)
		}
		last = addrs
		report(addrBackends(addrs))
	}
	for next := 0; ctx.Err() == nil; {
		for i := range s.addrs {
			at := s.addrs[(next+i)%len(s.addrs)]
			err := s.watch(ctx, at, func(addrs []netip.AddrPort) {
				delete(failing, at)
				publish(addrs)
			})
			if ctx.Err() != nil {
				return
			}
			if msg := err.Error(); failing[at] != msg {
				failing[at] = msg
				s.log.Warn().Stringer("sentinel", at).Str("master", s.master).Err(err).Msg("sentinel unavailable; trying the next")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.retry):
		}
	}
}

// addrBackends is the config's form of addresses Sentinel named.
func addrBackends(addrs []netip.AddrPort) []config.Backend {
	bs := make([]config.Backend, len(addrs))
	for i, a := range addrs {
		bs[i] = config.Backend{Name: a.String(), Address: a, Weight: 1}
	}
	return bs
}

// watch follows the master set through the Sentinel at addr until the
// Sentinel fails or ctx is done.
func (s *Sentinel) watch(ctx context.Context, addr netip.AddrPort, publish func([]netip.AddrPort)) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := s.dial(wctx, addr)
	if err != nil {
		return err
	}
	r := resp.NewReader(sub)
	if err := s.subscribe(sub, r); err != nil {
		sub.Close()
		return err
	}
	// One goroutine reads the subscription; the select below owns the
	// rest. Closing sub ends the reader, which watch waits for.
	events := make(chan resp.Value)
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	defer func() {
		cancel()
		sub.Close()
		<-readerDone
	}()
	go func() {
		defer close(readerDone)
		for {
			v, err := r.Read()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case events <- v:
			case <-wctx.Done():
				return
			}
		}
	}()
	// Ask after subscribing, so no event falls between the answer and the
	// subscription.
	if err := s.ask(wctx, addr, publish); err != nil {
		return err
	}
	tick := time.NewTicker(s.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return fmt.Errorf("subscription: %w", err)
		case v := <-events:
			if addrs, ok := s.switched(v); ok {
				// +switch-master carries the new master: report it at
				// once, without a round trip.
				publish(addrs)
				s.log.Info().Stringer("sentinel", addr).Str("master", s.master).Str("event", "+switch-master").
					Stringer("to", addrs[0]).Msg("sentinel failover")
			}
			if s.concerns(v) {
				if err := s.ask(wctx, addr, publish); err != nil {
					return err
				}
			}
		case <-tick.C:
			if err := s.ask(wctx, addr, publish); err != nil {
				return err
			}
			// The answer proves the Sentinel alive; a PING proves the
			// subscription is (its pong is an event like any other).
			sub.SetWriteDeadline(time.Now().Add(s.timeout))
			if _, err := sub.Write(resp.Command("PING")); err != nil {
				return fmt.Errorf("subscription: %w", err)
			}
		}
	}
}

// dial connects to a Sentinel and authenticates; the conn has no deadline.
func (s *Sentinel) dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: s.timeout}
	conn, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	if s.auth != nil {
		conn.SetDeadline(time.Now().Add(s.timeout))
		v, err := request(conn, resp.NewReader(conn), s.auth)
		if err == nil && (v.Kind != resp.SimpleString || v.Str != "OK") {
			err = fmt.Errorf("AUTH answered %s", resp.Quote([]byte(v.String())))
		}
		if err != nil {
			conn.Close()
			return nil, err
		}
		conn.SetDeadline(time.Time{})
	}
	return conn, nil
}

// subscribe subscribes conn to every Sentinel event and reads the
// confirmation.
func (s *Sentinel) subscribe(conn net.Conn, r *resp.Reader) error {
	conn.SetDeadline(time.Now().Add(s.timeout))
	defer conn.SetDeadline(time.Time{})
	v, err := request(conn, r, resp.Command("PSUBSCRIBE", "*"))
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if v.Kind != resp.Array || len(v.Array) != 3 || v.Array[0].Str != "psubscribe" {
		return fmt.Errorf("subscribe answered %s", resp.Quote([]byte(v.String())))
	}
	return nil
}

// request writes cmd and reads its reply.
func request(conn net.Conn, r *resp.Reader, cmd []byte) (resp.Value, error) {
	if _, err := conn.Write(cmd); err != nil {
		return resp.Value{}, err
	}
	return r.Read()
}

// ask asks the Sentinel at addr for the backends on a connection of its
// own and publishes them.
func (s *Sentinel) ask(ctx context.Context, addr netip.AddrPort, publish func([]netip.AddrPort)) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := s.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	r := resp.NewReader(conn)
	var addrs []netip.AddrPort
	if s.replicas {
		addrs, err = s.askReplicas(ctx, conn, r)
	} else {
		addrs, err = s.askMaster(ctx, conn, r)
	}
	if err != nil {
		return err
	}
	publish(addrs)
	return nil
}

// askMaster asks SENTINEL get-master-addr-by-name: [ip, port], or nil for
// a master set the Sentinel does not monitor.
func (s *Sentinel) askMaster(ctx context.Context, conn net.Conn, r *resp.Reader) ([]netip.AddrPort, error) {
	v, err := request(conn, r, resp.Command("SENTINEL", "get-master-addr-by-name", s.master))
	if err != nil {
		return nil, err
	}
	switch {
	case v.Kind == resp.Null:
		return nil, fmt.Errorf("it does not monitor a master set named %q", s.master)
	case v.Kind != resp.Array || len(v.Array) != 2:
		return nil, fmt.Errorf("get-master-addr-by-name answered %s", resp.Quote([]byte(v.String())))
	}
	a, err := resolve(ctx, v.Array[0].Str, v.Array[1].Str)
	if err != nil {
		return nil, err
	}
	return []netip.AddrPort{a}, nil
}

// askReplicas asks SENTINEL replicas (slaves before Redis 5): a list of
// field lists; a replica whose flags hold s_down, o_down or disconnected
// is left out.
func (s *Sentinel) askReplicas(ctx context.Context, conn net.Conn, r *resp.Reader) ([]netip.AddrPort, error) {
	v, err := request(conn, r, resp.Command("SENTINEL", "replicas", s.master))
	if err == nil && v.Kind == resp.Error && strings.HasPrefix(v.Str, "ERR unknown") {
		v, err = request(conn, r, resp.Command("SENTINEL", "slaves", s.master))
	}
	if err != nil {
		return nil, err
	}
	if v.Kind == resp.Error {
		return nil, fmt.Errorf("SENTINEL replicas answered %s", resp.Quote([]byte(v.String())))
	}
	if v.Kind != resp.Array {
		return nil, fmt.Errorf("SENTINEL replicas answered %s", resp.Quote([]byte(v.String())))
	}
	var addrs []netip.AddrPort
	for _, rep := range v.Array {
		f := fields(rep)
		if f == nil {
			return nil, fmt.Errorf("SENTINEL replicas answered %s", resp.Quote([]byte(rep.String())))
		}
		if down(f["flags"]) {
			continue
		}
		a, err := resolve(ctx, f["ip"], f["port"])
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(addrs), nil
}

// fields reads a flat [name, value, ...] array; nil when v is not one.
func fields(v resp.Value) map[string]string {
	if v.Kind != resp.Array || len(v.Array)%2 != 0 {
		return nil
	}
	f := make(map[string]string, len(v.Array)/2)
	for i := 0; i < len(v.Array); i += 2 {
		if v.Array[i].Kind != resp.BulkString || v.Array[i+1].Kind != resp.BulkString {
			return nil
		}
		f[v.Array[i].Str] = v.Array[i+1].Str
	}
	return f
}

// down reports whether Sentinel flags hold a replica down or unreachable.
func down(flags string) bool {
	for _, f := range strings.Split(flags, ",") {
		switch f {
		case "s_down", "o_down", "disconnected":
			return true
		}
	}
	return false
}

// resolve turns a Sentinel's ip and port into an address; a hostname
// (Sentinel's resolve-hostnames) is looked up now, its first address kept.
func resolve(ctx context.Context, host, port string) (netip.AddrPort, error) {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("port %q", port)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if lerr != nil || len(ips) == 0 {
			return netip.AddrPort{}, fmt.Errorf("address %q: %v", host, lerr)
		}
		ip = ips[0]
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}

// pmessage returns the channel and payload of a pattern subscription
// message; false for anything else (a pong, a confirmation).
func pmessage(v resp.Value) (channel, payload string, ok bool) {
	if v.Kind != resp.Array || len(v.Array) != 4 || v.Array[0].Str != "pmessage" {
		return "", "", false
	}
	return v.Array[2].Str, v.Array[3].Str, true
}

// switched returns the new master of a +switch-master event for this
// master set ("<name> <old ip> <old port> <new ip> <new port>"), when in
// master mode and the address is an IP.
func (s *Sentinel) switched(v resp.Value) ([]netip.AddrPort, bool) {
	channel, payload, ok := pmessage(v)
	if !ok || channel != "+switch-master" || s.replicas {
		return nil, false
	}
	f := strings.Fields(payload)
	if len(f) != 5 || f[0] != s.master {
		return nil, false
	}
	ip, err := netip.ParseAddr(f[3])
	port, perr := strconv.ParseUint(f[4], 10, 16)
	if err != nil || perr != nil || port == 0 {
		return nil, false // a hostname or garbage: the query that follows settles it
	}
	return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(port))}, true
}

// concerns reports whether an event is about this master set: the set
// itself ("master <name> ..."), or an instance of it ("... @ <name> ...").
func (s *Sentinel) concerns(v resp.Value) bool {
	channel, payload, ok := pmessage(v)
	if !ok || strings.HasPrefix(channel, "__sentinel__") {
		return false
	}
	f := strings.Fields(payload)
	if len(f) >= 2 && f[0] == "master" && f[1] == s.master {
		return true
	}
	if channel == "+switch-master" && len(f) > 0 && f[0] == s.master {
		return true
	}
	for i, w := range f {
		if w == "@" && i+1 < len(f) && f[i+1] == s.master {
			return true
		}
	}
	return false
}
