package discovery

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The standard library's resolver cannot be pointed at chosen servers per
// lookup without a custom Dial, and it hides the TTLs, which discovery
// must follow. So splicer asks itself: one question per query, over UDP
// with EDNS(0), again over TCP when the answer is truncated, as RFC 7766
// requires.

// Limits of the DNS client.
const (
	// udpSize is the EDNS(0) payload splicer offers: the size the 2020 DNS
	// flag day agreed on, which fits a path MTU without fragments.
	udpSize = 1232
	// maxMessage bounds a message read over TCP (its length prefix allows
	// 64 KiB, which is also all a UDP datagram can hold).
	maxMessage = 65535
	// maxFound bounds the backends one lookup may produce, so a lying or
	// broken DNS server cannot flood a frontend.
	maxFound = 1000
)

// errNoResolver is returned when there is no server to ask.
var errNoResolver = errors.New("no DNS resolver: set dns.resolvers, or nameserver lines in /etc/resolv.conf")

// resolver asks DNS servers, in order, until one answers. It has at least
// one server: NewDNS refuses a source without one.
type resolver struct {
	servers []netip.AddrPort
	timeout time.Duration // per query and server
}

// systemResolvers reads the nameserver lines of a resolv.conf file.
func systemResolvers(path string) ([]netip.AddrPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []netip.AddrPort
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		if ip, err := netip.ParseAddr(fields[1]); err == nil {
			out = append(out, netip.AddrPortFrom(ip, 53))
		}
	}
	return out, sc.Err()
}

// reply is the part of an answer a lookup reads.
type reply struct {
	// nxdomain: the name does not exist (an answer, not a failure).
	nxdomain bool
	answers  []dnsmessage.Resource
	extra    []dnsmessage.Resource
}

// query asks the servers for name's records of type t, each in turn until
// one answers. An answer is NOERROR (possibly with no records) or
// NXDOMAIN; SERVFAIL, REFUSED, a timeout or a malformed reply move on to
// the next server, and when none answers the error says what each did.
func (r *resolver) query(ctx context.Context, name string, t dnsmessage.Type) (*reply, error) {
	// A context past its deadline may not say so yet (its timer has not
	// fired), and a dial would fail with a plain timeout: say it.
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return nil, context.DeadlineExceeded
	}
	q, err := dnsmessage.NewName(fqdn(name))
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", name, err)
	}
	question := dnsmessage.Question{Name: q, Type: t, Class: dnsmessage.ClassINET}
	var failed []string
	for _, server := range r.servers {
		rep, err := r.ask(ctx, server, question)
		if err == nil {
			return rep, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		failed = append(failed, fmt.Sprintf("%v: %v", server, err))
	}
	return nil, errors.New(strings.Join(failed, "; "))
}

// ask puts question to one server: over UDP, then over TCP if the answer
// was truncated.
func (r *resolver) ask(ctx context.Context, server netip.AddrPort, question dnsmessage.Question) (*reply, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	id := uint16(rand.Uint32())
	msg, err := buildQuery(id, question)
	if err != nil {
		return nil, err
	}
	m, err := exchangeUDP(ctx, server, id, question, msg)
	if err == nil && m.Truncated {
		m, err = exchangeTCP(ctx, server, id, question, msg)
	}
	if err != nil {
		return nil, err
	}
	switch m.RCode {
	case dnsmessage.RCodeSuccess:
		return &reply{answers: m.Answers, extra: m.Additionals}, nil
	case dnsmessage.RCodeNameError:
		return &reply{nxdomain: true}, nil
	}
	return nil, fmt.Errorf("answered %s", strings.TrimPrefix(m.RCode.String(), "RCode"))
}

// buildQuery packs a recursive query with an EDNS(0) record.
func buildQuery(id uint16, question dnsmessage.Question) ([]byte, error) {
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{question},
		Additionals: []dnsmessage.Resource{{
			// RFC 6891: the OPT record is owned by the root, and its class
			// is the UDP payload size offered.
			Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("."), Type: dnsmessage.TypeOPT, Class: udpSize},
			Body:   &dnsmessage.OPTResource{},
		}},
	}
	return m.AppendPack(make([]byte, 0, 128))
}

// exchangeUDP sends msg and waits for its answer, ignoring datagrams that
// are not it (a late answer to an earlier query, or a forgery that does
// not know the ID).
func exchangeUDP(ctx context.Context, server netip.AddrPort, id uint16, question dnsmessage.Question, msg []byte) (*dnsmessage.Message, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := conn.Write(msg); err != nil {
		return nil, ioError(err)
	}
	buf := make([]byte, maxMessage)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, ioError(err)
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || !isAnswerTo(&m, id, question) {
			continue
		}
		return &m, nil
	}
}

// ioError says what went wrong with a query's socket without the local
// port, which differs on every query: the same trouble twice reads the
// same, so it is logged once.
func ioError(err error) error {
	var op *net.OpError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errors.New("no answer (timeout)")
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused (no DNS server on that port)")
	case errors.As(err, &op):
		return op.Err
	}
	return err
}

// exchangeTCP sends msg over TCP, both ways with a two-byte length prefix.
func exchangeTCP(ctx context.Context, server netip.AddrPort, id uint16, question dnsmessage.Question, msg []byte) (*dnsmessage.Message, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		return nil, fmt.Errorf("truncated over UDP, and over TCP: %w", ioError(err))
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), uint16(len(msg)))
	if _, err := conn.Write(append(out, msg...)); err != nil {
		return nil, fmt.Errorf("over TCP: %w", ioError(err))
	}
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, fmt.Errorf("over TCP: %w", ioError(err))
	}
	buf := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, fmt.Errorf("over TCP: %w", ioError(err))
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf); err != nil {
		return nil, fmt.Errorf("over TCP: malformed answer: %w", err)
	}
	if !isAnswerTo(&m, id, question) {
		return nil, errors.New("over TCP: the answer is not to the question asked")
	}
	return &m, nil
}

// isAnswerTo reports whether m answers the query id asking question.
func isAnswerTo(m *dnsmessage.Message, id uint16, question dnsmessage.Question) bool {
	if !m.Response || m.ID != id || len(m.Questions) != 1 {
		return false
	}
	got := m.Questions[0]
	return got.Type == question.Type && got.Class == question.Class && sameName(got.Name, question.Name)
}

// fqdn makes name absolute: splicer applies no search domains.
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// sameName compares DNS names, which are case-insensitive.
func sameName(a, b dnsmessage.Name) bool {
	return strings.EqualFold(a.String(), b.String())
}

// ttlMin keeps the smallest TTL of the records a lookup used.
type ttlMin struct {
	v   uint32
	set bool
}

func (t *ttlMin) add(v uint32) {
	if !t.set || v < t.v {
		t.v, t.set = v, true
	}
}

// chain returns the names an answer's records for name may be owned by:
// name and the targets of the CNAME records that lead from it; the CNAME
// records' TTLs go to ttl.
func chain(name dnsmessage.Name, answers []dnsmessage.Resource, ttl *ttlMin) []dnsmessage.Name {
	names := []dnsmessage.Name{name}
	// A chain longer than the answer is a loop.
	for range answers {
		grew := false
		for _, rr := range answers {
			c, ok := rr.Body.(*dnsmessage.CNAMEResource)
			if !ok || !sameName(rr.Header.Name, names[len(names)-1]) {
				continue
			}
			names = append(names, c.CNAME)
			ttl.add(rr.Header.TTL)
			grew = true
			break
		}
		if !grew {
			break
		}
	}
	return names
}

// ownedBy reports whether rr belongs to one of names.
func ownedBy(rr dnsmessage.Resource, names []dnsmessage.Name) bool {
	for _, n := range names {
		if sameName(rr.Header.Name, n) {
			return true
		}
	}
	return false
}

// recordAddrs returns the addresses of the A or AAAA records (per t) of names
// among rrs; their TTLs go to ttl.
func recordAddrs(rrs []dnsmessage.Resource, names []dnsmessage.Name, t dnsmessage.Type, ttl *ttlMin) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		if rr.Header.Type != t || !ownedBy(rr, names) {
			continue
		}
		switch body := rr.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(body.A))
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(body.AAAA).Unmap())
		default:
			continue
		}
		ttl.add(rr.Header.TTL)
	}
	return out
}

// lookupIP returns the addresses of name's records of type t (A or
// AAAA), following CNAMEs; the TTLs of the records used go to ttl. No
// address with a nil error is an empty answer; nxdomain says the name
// does not exist at all.
func (r *resolver) lookupIP(ctx context.Context, name string, t dnsmessage.Type, ttl *ttlMin) (ips []netip.Addr, nxdomain bool, err error) {
	rep, err := r.query(ctx, name, t)
	if err != nil || rep.nxdomain {
		return nil, rep != nil && rep.nxdomain, err
	}
	q, _ := dnsmessage.NewName(fqdn(name)) // query checked it
	var used ttlMin
	ips = recordAddrs(rep.answers, chain(q, rep.answers, &used), t, &used)
	if len(ips) > 0 {
		ttl.add(used.v)
	}
	return ips, false, nil
}

// lookupHost returns name's IPv4 addresses, or its IPv6 ones when it has
// none; their TTLs go to ttl.
func (r *resolver) lookupHost(ctx context.Context, name string, ttl *ttlMin) ([]netip.Addr, error) {
	ips, nx, err := r.lookupIP(ctx, name, dnsmessage.TypeA, ttl)
	if err != nil || len(ips) > 0 || nx {
		return ips, err
	}
	ips, _, err = r.lookupIP(ctx, name, dnsmessage.TypeAAAA, ttl)
	return ips, err
}

// srvAddr is one address an SRV lookup found.
type srvAddr struct {
	addr             netip.AddrPort
	priority, weight uint16
}

// srvTarget is one SRV record of an answer with what its target resolved
// to.
type srvTarget struct {
	target                 string // lower case, absolute: the key of its held addresses
	port, priority, weight uint16
	// ips are the target's addresses; none, with a nil err, when the name
	// does not exist or has no address record: an answer, not a failure.
	ips []netip.Addr
	// err says why no resolver answered for the target's addresses.
	err error
}

// lookupSRV returns name's SRV records (no NXDOMAIN error: the name not
// existing is an empty answer), each with its target's addresses: from
// the additional section, else asked (A, else AAAA), each target once
// however many records name it. A target whose address lookup fails
// carries its error, and the caller decides what it stands for; the "."
// target (no service) and port 0 are left out. The TTLs of the records
// used go to ttl.
func (r *resolver) lookupSRV(ctx context.Context, name string, ttl *ttlMin) ([]srvTarget, error) {
	rep, err := r.query(ctx, name, dnsmessage.TypeSRV)
	if err != nil || rep.nxdomain {
		return nil, err
	}
	q, _ := dnsmessage.NewName(fqdn(name))
	var used ttlMin
	names := chain(q, rep.answers, &used)
	type resolved struct {
		ips []netip.Addr
		err error
	}
	asked := make(map[string]resolved)
	var out []srvTarget
	addrs := 0
	for _, rr := range rep.answers {
		srv, ok := rr.Body.(*dnsmessage.SRVResource)
		if !ok || !ownedBy(rr, names) || srv.Target.String() == "." || srv.Port == 0 {
			continue
		}
		used.add(rr.Header.TTL)
		key := strings.ToLower(srv.Target.String())
		res, seen := asked[key]
		if !seen {
			target := []dnsmessage.Name{srv.Target}
			res.ips = recordAddrs(rep.extra, target, dnsmessage.TypeA, &used)
			if len(res.ips) == 0 {
				res.ips = recordAddrs(rep.extra, target, dnsmessage.TypeAAAA, &used)
			}
			if len(res.ips) == 0 {
				res.ips, res.err = r.lookupHost(ctx, srv.Target.String(), &used)
			}
			asked[key] = res
		}
		out = append(out, srvTarget{target: key, port: srv.Port, priority: srv.Priority, weight: srv.Weight, ips: res.ips, err: res.err})
		if addrs += len(res.ips); addrs >= maxFound {
			break
		}
	}
	if addrs > 0 {
		ttl.add(used.v)
	}
	return out, nil
}
