package main

import (
	"flag"
	"fmt"
	"net"
)

// echoBufferSize is the echo server's per-connection buffer: ample for the
// 64-byte messages of the tests, small for thousands of idle connections.
const echoBufferSize = 2048

// runEcho is the hidden "echo -listen ADDR" subcommand: a TCP echo server,
// the backend of the connection-rate, request/response and idle tests. It
// copies through a buffer rather than io.Copy, which would splice and hold
// a pipe (two more fds) for every idle connection.
func runEcho(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	ctx, stop := untilSignal()
	defer stop()
	return acceptLoop(ctx, ln, echoConn)
}

// echoConn writes back whatever it reads until the peer closes.
func echoConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, echoBufferSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
