package admin_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/daemon"
	"github.com/splicerlb/splicer/pkg/demo"
	"github.com/splicerlb/splicer/pkg/stats"
)

// ExampleClient_Stats reads a running daemon's stats through the admin
// client, as `splicer stats` does. The daemon serves its admin API on a
// unix socket in a temporary directory, where the kernel tells it the
// caller's uid: socket_roles makes this process's user a viewer, so no
// token is needed. The frontend and its demo backend are on loopback, on
// ports the kernel chooses.
func ExampleClient_Stats() {
	dir, err := os.MkdirTemp("", "splicer-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "admin.sock")

	backend, err := demo.Start(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()

	cfg, err := config.New().Workers(1).ShutdownTimeout(5*time.Second).
		AdminListen("").AdminSocket(socket).AdminSocketRole("uid:"+strconv.Itoa(os.Getuid()), config.RoleViewer).
		Frontend("web").Listen("127.0.0.1:0").HealthCheck(config.CheckNone).
		Backend(backend.Addr().String(), 1).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	d, err := daemon.New(cfg, zerolog.Nop(), daemon.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		stop() // Run shuts the daemon down gracefully, then returns
		if err := <-done; err != nil {
			log.Fatal(err)
		}
	}()

	c, err := admin.NewClientWith("unix:"+socket, admin.ClientOptions{})
	if err != nil {
		log.Fatal(err)
	}
	// Run serves the admin socket before it binds the listeners (so that a
	// bad admin address fails the start before any client is accepted):
	// wait, within a bound, until the stats show the frontend's address.
	st, err := statsWhen(c, func(st stats.Stats) bool { return len(st.Frontends[0].Listen) > 0 })
	if err != nil {
		log.Fatal(err)
	}

	// One client through the frontend, whose address the stats report.
	conn, err := net.DialTimeout("tcp", st.Frontends[0].Listen[0], 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := bufio.NewReader(conn).ReadString('\n') // "hello from demo backend ADDR"
	if err != nil {
		log.Fatal(err)
	}
	conn.Close()

	// Counters are read live: wait until the connection has ended.
	st, err = statsWhen(c, func(st stats.Stats) bool {
		fe := st.Frontends[0]
		return fe.Total == 1 && fe.Active == 0
	})
	if err != nil {
		log.Fatal(err)
	}
	fe := st.Frontends[0]
	fmt.Printf("frontend %s: %s, %s, %d connection, %d active\n", fe.Name, fe.Protocol, fe.Strategy, fe.Total, fe.Active)
	fmt.Printf("  ended: %v\n", nonZero(fe.Closed))
	for _, b := range fe.Backends {
		fmt.Printf("  backend: %s, up %v, %d connection, greeting's bytes relayed: %v\n",
			b.State, b.Health.Up, b.Total, b.BytesOut == uint64(len(greeting)))
	}
	// Output:
	// frontend web: tcp, roundrobin, 1 connection, 0 active
	//   ended: map[client_fin:1]
	//   backend: ready, up true, 1 connection, greeting's bytes relayed: true
}

// statsWhen asks for the stats until cond holds, for at most 10 seconds.
func statsWhen(c *admin.Client, cond func(stats.Stats) bool) (stats.Stats, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := c.Stats(ctx)
		cancel()
		if err == nil && len(st.Frontends) > 0 && cond(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("stats: condition not met within 10s (last error: %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nonZero keeps the counts above zero (fmt prints a map sorted by key).
func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}
