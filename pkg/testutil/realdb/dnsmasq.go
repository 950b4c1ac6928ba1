package realdb

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// DNSRecords are the records a Dnsmasq serves, all under the domain
// "test" (RFC 6761), which it answers alone: a name it has no record for
// is NXDOMAIN, a name with records of another type an empty answer.
type DNSRecords struct {
	// TTL is the TTL of every record, in seconds (dnsmasq's local-ttl).
	TTL int
	// Hosts maps names to their addresses (A and AAAA records).
	Hosts map[string][]netip.Addr
	// SRV are the SRV records, in the order dnsmasq is told them.
	SRV []SRVRecord
}

// SRVRecord is one SRV record.
type SRVRecord struct {
	Name, Target           string
	Port, Priority, Weight int
}

// Dnsmasq is a dnsmasq serving DNS on a loopback port, started by a test.
type Dnsmasq struct {
	*Process
	Addr netip.AddrPort
	Dir  string
	t    testing.TB
	// release gives back the port Stop holds; nil while dnsmasq runs.
	release func()
}

// DnsmasqBin returns the dnsmasq binary, or skips the test.
func DnsmasqBin(t testing.TB) string {
	t.Helper()
	testutil.SkipShort(t, "dnsmasq")
	bin := lookFirst("dnsmasq", "/usr/sbin/dnsmasq")
	if bin == "" {
		t.Skip("install dnsmasq (Debian package dnsmasq-base) to run this test")
	}
	return bin
}

// StartDnsmasq starts dnsmasq on a free loopback port (UDP and TCP)
// serving recs, and returns once it answers.
func StartDnsmasq(t testing.TB, recs DNSRecords) *Dnsmasq {
	t.Helper()
	bin := DnsmasqBin(t)
	d := &Dnsmasq{Addr: testutil.FreeUDPAndTCP(t), Dir: t.TempDir(), t: t}
	d.Process = &Process{t: t, Name: bin, Args: []string{
		"--keep-in-foreground", "--conf-file=" + filepath.Join(d.Dir, "dnsmasq.conf"),
	}}
	d.Set(recs)
	return d
}

// Set makes dnsmasq serve recs: it writes its config and restarts it on
// the same port (dnsmasq reads SRV records only at start), so queries in
// between go unanswered for a moment. It returns once dnsmasq answers.
func (d *Dnsmasq) Set(recs DNSRecords) {
	d.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "port=%d\nlisten-address=%s\nbind-interfaces\nno-resolv\nno-hosts\nno-poll\npid-file=\n", d.Addr.Port(), d.Addr.Addr())
	fmt.Fprintf(&b, "local=/test/\nlocal-ttl=%d\nhost-record=ready.test,127.0.0.1\n", recs.TTL)
	if os.Geteuid() == 0 {
		// As root it would change to nobody, who cannot read the test's
		// files.
		b.WriteString("user=root\n")
	}
	if testing.Verbose() {
		b.WriteString("log-queries\nlog-facility=-\n")
	}
	for name, ips := range recs.Hosts {
		// A host-record takes one address of each family: one line per
		// address.
		for _, ip := range ips {
			fmt.Fprintf(&b, "host-record=%s,%s\n", name, ip)
		}
	}
	for _, r := range recs.SRV {
		fmt.Fprintf(&b, "srv-host=%s,%s,%d,%d,%d\n", r.Name, r.Target, r.Port, r.Priority, r.Weight)
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "dnsmasq.conf"), []byte(b.String()), 0o644); err != nil {
		d.t.Fatal(err)
	}
	if d.cmd != nil && d.Running() {
		d.Process.Stop(syscall.SIGTERM)
	}
	if d.release != nil {
		d.release()
		d.release = nil
	}
	d.Start()
	d.WaitReady()
}

// Stop stops dnsmasq with sig and holds its port until the next Set, as
// a closed port answers (testutil.HoldPort): another socket of the machine
// taking it meanwhile would keep dnsmasq from coming back on it.
func (d *Dnsmasq) Stop(sig syscall.Signal) {
	d.t.Helper()
	d.Process.Stop(sig)
	d.release = testutil.HoldPort(d.t, d.Addr)
}

// WaitReady waits until dnsmasq answers a query.
func (d *Dnsmasq) WaitReady() {
	d.t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, d.Addr.String())
	}}
	testutil.WaitFor(d.t, 20*time.Second, "dnsmasq at "+d.Addr.String(), func() bool {
		if !d.Running() {
			d.t.Fatalf("dnsmasq exited: %s\nits config:\n%s", d.Output(), d.config())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := r.LookupHost(ctx, "ready.test.")
		return err == nil
	})
}

func (d *Dnsmasq) config() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dnsmasq.conf"))
	return string(b)
}
