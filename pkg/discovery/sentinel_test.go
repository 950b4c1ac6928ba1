package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// fakeSentinel answers the commands Sentinel discovery sends and pushes
// events to its subscribers.
type fakeSentinel struct {
	t        *testing.T
	ln       net.Listener
	addr     netip.AddrPort
	password string

	mu       sync.Mutex
	master   string // "ip port" of master set "m"; "" unknown
	replicas string // raw RESP answer to SENTINEL replicas m
	subs     []net.Conn
	asked    int
	wg       sync.WaitGroup
}

func startFakeSentinel(t *testing.T, master, password string) *fakeSentinel {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSentinel{t: t, ln: ln, addr: netip.MustParseAddrPort(ln.Addr().String()), master: master, password: password}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Go(func() { f.serve(c) })
		}
	})
	t.Cleanup(f.stop)
	return f
}

// stop closes the listener and every connection.
func (f *fakeSentinel) stop() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.subs {
		c.Close()
	}
	f.subs = nil
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeSentinel) serve(c net.Conn) {
	defer c.Close()
	r := resp.NewReader(c)
	authed := f.password == ""
	for {
		v, err := r.Read()
		if err != nil {
			return
		}
		var args []string
		for _, a := range v.Array {
			args = append(args, a.Str)
		}
		cmd := strings.ToUpper(strings.Join(args, " "))
		var reply string
		switch {
		case len(args) == 2 && args[0] == "AUTH":
			if args[1] == f.password {
				authed, reply = true, "+OK\r\n"
			} else {
				reply = "-WRONGPASS invalid username-password pair\r\n"
			}
		case !authed:
			reply = "-NOAUTH Authentication required.\r\n"
		case cmd == "PSUBSCRIBE *":
			f.mu.Lock()
			f.subs = append(f.subs, c)
			f.mu.Unlock()
			reply = "*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n"
		case cmd == "PING":
			reply = "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
		case cmd == "SENTINEL GET-MASTER-ADDR-BY-NAME M":
			f.mu.Lock()
			f.asked++
			m := f.master
			f.mu.Unlock()
			if m == "" {
				reply = "*-1\r\n"
			} else {
				ip, port, _ := strings.Cut(m, " ")
				reply = fmt.Sprintf("*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(ip), ip, len(port), port)
			}
		case cmd == "SENTINEL REPLICAS M":
			f.mu.Lock()
			f.asked++
			reply = f.replicas
			f.mu.Unlock()
		default:
			reply = "-ERR unknown command\r\n"
		}
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
}

// publish sends an event to every subscriber.
func (f *fakeSentinel) publish(channel, payload string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := fmt.Sprintf("*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(channel), channel, len(payload), payload)
	for _, c := range f.subs {
		c.Write([]byte(msg))
	}
}

func (f *fakeSentinel) setMaster(m string) {
	f.mu.Lock()
	f.master = m
	f.mu.Unlock()
}

func (f *fakeSentinel) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// reports collects what Run reports.
type reports struct {
	mu   sync.Mutex
	list [][]netip.AddrPort
}

func (r *reports) add(bs []config.Backend) {
	a := make([]netip.AddrPort, len(bs))
	for i, b := range bs {
		a[i] = b.Address
	}
	r.mu.Lock()
	r.list = append(r.list, a)
	r.mu.Unlock()
}

func (r *reports) last() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) == 0 {
		return nil
	}
	return r.list[len(r.list)-1]
}

func (r *reports) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.list)
}

// runSentinel runs a watch of d until the test ends.
func runSentinel(t *testing.T, d *config.Discovery, refresh time.Duration) (*Sentinel, *reports) {
	t.Helper()
	s, err := NewSentinel(d, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	s.refresh, s.retry, s.timeout = refresh, 20*time.Millisecond, 500*time.Millisecond
	rep := &reports{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, rep.add)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s, rep
}

func addrs(list ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range list {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

// TestSentinelFollowsSwitch: the master is reported at start, a
// +switch-master moves it at once, and events about other master sets
// change nothing.
func TestSentinelFollowsSwitch(t *testing.T) {
	f := startFakeSentinel(t, "10.0.0.1 6379", "pw")
	t.Setenv("SPLICER_TEST_SENTINEL_PW", "pw")
	s, rep := runSentinel(t, &config.Discovery{Sentinel: []netip.AddrPort{f.addr}, Master: "m", Password: config.Secret{Env: "SPLICER_TEST_SENTINEL_PW"}}, time.Hour)
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	if got := rep.last(); !slices.Equal(got, addrs("10.0.0.1:6379")) {
		t.Fatalf("first report %v", got)
	}
	testutil.WaitFor(t, 10*time.Second, "the subscription", func() bool { return f.subscribers() == 1 })

	f.publish("+switch-master", "other 10.0.0.1 6379 10.0.0.9 6379")
	f.publish("+sdown", "slave 10.0.0.7:6379 10.0.0.7 6379 @ other 10.0.0.1 6379")
	// Sentinel's state changes before it announces the switch.
	f.setMaster("10.0.0.2 6380")
	sent := time.Now()
	f.publish("+switch-master", "m 10.0.0.1 6379 10.0.0.2 6380")
	testutil.WaitFor(t, 10*time.Second, "the switch reported", func() bool { return slices.Equal(rep.last(), addrs("10.0.0.2:6380")) })
	if d := time.Since(sent); d > time.Second {
		t.Errorf("switch reported %v after the event", d)
	}
	if n := rep.count(); n != 2 {
		t.Errorf("%d reports, want 2 (one per change): %v", n, rep.list)
	}
}

// TestSentinelMovesOn: when the Sentinel in use dies, the next one of the
// list is used; a Sentinel that does not know the master set is skipped.
func TestSentinelMovesOn(t *testing.T) {
	unknown := startFakeSentinel(t, "", "")
	a := startFakeSentinel(t, "10.0.0.1 6379", "")
	b := startFakeSentinel(t, "10.0.0.1 6379", "")
	_, rep := runSentinel(t, &config.Discovery{Sentinel: []netip.AddrPort{unknown.addr, a.addr, b.addr}, Master: "m"}, time.Hour)
	testutil.WaitFor(t, 10*time.Second, "a subscription on a", func() bool { return a.subscribers() == 1 })
	testutil.WaitFor(t, 10*time.Second, "a's answer", func() bool { return slices.Equal(rep.last(), addrs("10.0.0.1:6379")) })
	b.setMaster("10.0.0.3 6379")
	a.stop()
	testutil.WaitFor(t, 10*time.Second, "b's answer", func() bool { return slices.Equal(rep.last(), addrs("10.0.0.3:6379")) })
}

// TestSentinelRefresh: without events the state is asked again every
// refresh, which catches a change whose event was lost.
func TestSentinelRefresh(t *testing.T) {
	f := startFakeSentinel(t, "10.0.0.1 6379", "")
	_, rep := runSentinel(t, &config.Discovery{Sentinel: []netip.AddrPort{f.addr}, Master: "m"}, 30*time.Millisecond)
	testutil.WaitFor(t, 10*time.Second, "first report", func() bool { return rep.count() == 1 })
	f.setMaster("10.0.0.4 6379")
	testutil.WaitFor(t, 10*time.Second, "the change picked up", func() bool { return slices.Equal(rep.last(), addrs("10.0.0.4:6379")) })
}

// TestSentinelReplicas: replica mode reports the replicas Sentinel does
// not hold down, sorted, and asks again on events about them.
func TestSentinelReplicas(t *testing.T) {
	replica := func(ip, port, flags string) string {
		fields := []string{"name", ip + ":" + port, "ip", ip, "port", port, "flags", flags, "master-link-status", "ok"}
		s := fmt.Sprintf("*%d\r\n", len(fields))
		for _, f := range fields {
			s += fmt.Sprintf("$%d\r\n%s\r\n", len(f), f)
		}
		return s
	}
	f := startFakeSentinel(t, "10.0.0.1 6379", "")
	f.mu.Lock()
	f.replicas = "*3\r\n" + replica("10.0.0.3", "6379", "slave") + replica("10.0.0.2", "6379", "slave") +
		replica("10.0.0.4", "6379", "s_down,slave,disconnected")
	f.mu.Unlock()
	_, rep := runSentinel(t, &config.Discovery{Sentinel: []netip.AddrPort{f.addr}, Master: "m", Role: config.RoleReplica}, time.Hour)
	testutil.WaitFor(t, 10*time.Second, "replicas", func() bool { return slices.Equal(rep.last(), addrs("10.0.0.2:6379", "10.0.0.3:6379")) })
	testutil.WaitFor(t, 10*time.Second, "the subscription", func() bool { return f.subscribers() == 1 })
	f.mu.Lock()
	f.replicas = "*2\r\n" + replica("10.0.0.2", "6379", "slave") + replica("10.0.0.4", "6379", "slave")
	f.mu.Unlock()
	f.publish("-sdown", "slave 10.0.0.4:6379 10.0.0.4 6379 @ m 10.0.0.1 6379")
	testutil.WaitFor(t, 10*time.Second, "the recovered replica", func() bool { return slices.Equal(rep.last(), addrs("10.0.0.2:6379", "10.0.0.4:6379")) })
}

// TestSentinelWrongPassword: a refused AUTH counts as the Sentinel being
// unavailable; nothing is reported.
func TestSentinelWrongPassword(t *testing.T) {
	f := startFakeSentinel(t, "10.0.0.1 6379", "right")
	t.Setenv("SPLICER_TEST_SENTINEL_PW", "wrong")
	_, rep := runSentinel(t, &config.Discovery{Sentinel: []netip.AddrPort{f.addr}, Master: "m", Password: config.Secret{Env: "SPLICER_TEST_SENTINEL_PW"}}, time.Hour)
	time.Sleep(200 * time.Millisecond)
	if rep.count() != 0 {
		t.Fatalf("reports %v with a wrong password", rep.list)
	}
}

func TestSentinelMissingPassword(t *testing.T) {
	_, err := NewSentinel(&config.Discovery{Sentinel: addrs("127.0.0.1:1"), Master: "m", Password: config.Secret{Env: "SPLICER_TEST_UNSET_PW"}}, zerolog.Nop())
	if err == nil || !errors.Is(err, config.ErrSecretUnavailable) || !strings.Contains(err.Error(), "discovery.password: env SPLICER_TEST_UNSET_PW") {
		t.Fatalf("NewSentinel = %v", err)
	}
}

// FuzzSentinelEvent: any event a Sentinel pushes is parsed without a
// panic, and only a well-formed +switch-master of this master set moves
// the master.
func FuzzSentinelEvent(f *testing.F) {
	f.Add("+switch-master", "m 10.0.0.1 6379 10.0.0.2 6380")
	f.Add("+sdown", "slave 10.0.0.7:6379 10.0.0.7 6379 @ m 10.0.0.1 6379")
	f.Add("+odown", "master m 10.0.0.1 6379 #quorum 2/2")
	s := &Sentinel{master: "m"}
	f.Fuzz(func(t *testing.T, channel, payload string) {
		v := resp.Value{Kind: resp.Array, Array: []resp.Value{
			{Kind: resp.BulkString, Str: "pmessage"}, {Kind: resp.BulkString, Str: "*"},
			{Kind: resp.BulkString, Str: channel}, {Kind: resp.BulkString, Str: payload},
		}}
		got, ok := s.switched(v)
		if ok && (channel != "+switch-master" || len(got) != 1 || !got[0].IsValid() || strings.Fields(payload)[0] != "m") {
			t.Fatalf("switched(%q, %q) = %v", channel, payload, got)
		}
		_ = s.concerns(v)
	})
}
