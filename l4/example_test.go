package l4_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/config"
)

// Example embeds the data plane: a config built in code, a Server started
// from it, one client relayed to a backend, and a graceful shutdown. The
// backend is a plain Go echo server; every socket is on loopback and the
// kernel chooses the ports (127.0.0.1:0), which Addrs reports once the
// server is started.
func Example() {
	// The backend: echo one line back, in upper case, then close.
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer backendLn.Close()
	go func() {
		for {
			c, err := backendLn.Accept()
			if err != nil {
				return // the listener was closed
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "echo: %s", line)
			}()
		}
	}()

	// The config: what a splicer.toml would say, with the same defaults
	// and validation. Build reports every mistake with its field.
	cfg, err := config.New().Workers(1).
		Frontend("web").Listen("127.0.0.1:0").ConnectTimeout(time.Second).
		Backend(backendLn.Addr().String(), 1).
		Build()
	if err != nil {
		log.Fatal(err)
	}

	// NewServer binds nothing; Start binds every listener and starts the
	// event loops; Shutdown drains and stops them.
	srv, err := l4.NewServer(cfg, zerolog.Nop())
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	front := srv.Addrs("web")[0]

	c, err := net.DialTimeout("tcp", front.String(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "hello\n")
	reply, err := io.ReadAll(c) // the backend's answer, then its FIN, relayed
	c.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", reply)

	// Shutdown stops accepting and waits for open connections, bounded by
	// its ctx; the counters stay readable afterwards.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	n, _ := srv.Counters("web")
	fmt.Printf("accepted %d, relayed %d bytes in and %d out\n", n.Total, n.BytesIn, n.BytesOut)
	// Output:
	// echo: hello
	// accepted 1, relayed 6 bytes in and 12 out
}
