package health_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/health"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
)

// bannerChecker is a custom probe: a backend is up when the first line it
// sends on a new connection is "READY". It keeps the Checker contract:
// ctx bounds the whole probe, nothing outlives Check, and the message
// builds up the cause after the probe kind and the address.
type bannerChecker struct{}

func (bannerChecker) Check(ctx context.Context, target netip.AddrPort) health.Result {
	start := time.Now()
	fail := func(format string, args ...any) health.Result {
		msg := fmt.Sprintf("banner probe %s: ", target) + fmt.Sprintf(format, args...)
		return health.Result{Msg: msg, Duration: time.Since(start)}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return fail("connect: %v", err)
	}
	defer c.Close()
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fail("read: %v", err)
	}
	if line = strings.TrimSpace(line); line != "READY" {
		return fail("banner %q, want \"READY\"", line)
	}
	return health.Result{OK: true, Msg: fmt.Sprintf("banner probe %s: READY", target), Duration: time.Since(start)}
}

// The compiler checks the contract.
var _ health.Checker = bannerChecker{}

// ExampleChecker runs a custom probe on two backends with a Scheduler:
// both start up, as new backends do, and the one whose banner is wrong is
// taken down after fall consecutive failures. onChange hears only flips.
func ExampleChecker() {
	good := bannerServer("READY")
	defer good.Close()
	busy := bannerServer("BUSY")
	defer busy.Close()

	members := []*backend.Backend{newBackend("good", good), newBackend("busy", busy)}

	// The timing a [frontend.health] table sets; Interval is short so the
	// example ends quickly.
	h := config.Health{Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 3}
	flips := make(chan string, 4)
	onChange := func(b *backend.Backend, up bool, r health.Result) (closed int) {
		msg := strings.ReplaceAll(r.Msg, b.Address().String(), "ADDR")
		flips <- fmt.Sprintf("%s up=%v: %s", b.Name(), up, msg)
		return 0 // the daemon closes the backend's connections here
	}
	sched, err := health.New(h, bannerChecker{}, members, onChange, zerolog.Nop())
	if err != nil {
		log.Fatal(err)
	}

	// Run owns one goroutine per backend until its ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()

	select {
	case flip := <-flips:
		fmt.Println(flip)
	case <-time.After(10 * time.Second):
		log.Fatal("no flip")
	}
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	st, _ := sched.State(members[0])
	fmt.Printf("good: up=%v, healthy=%v\n", st.Up, members[0].Healthy())
	// Output:
	// busy up=false: banner probe ADDR: banner "BUSY", want "READY"
	// good: up=true, healthy=true
}

// bannerServer listens on loopback and greets every client with banner
// until it is closed.
func bannerServer(banner string) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", banner)
			c.Close()
		}
	}()
	return ln
}

// newBackend is a backend named name at ln's address.
func newBackend(name string, ln net.Listener) *backend.Backend {
	b, err := backend.New(backend.Spec{Name: name, Address: netip.MustParseAddrPort(ln.Addr().String()), Weight: 1})
	if err != nil {
		log.Fatal(err)
	}
	return b
}
