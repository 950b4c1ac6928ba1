package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/splicerlb/splicer/pkg/proxyproto"
)

// echoBufferSize is the echo server's per-connection buffer: ample for the
// 64-byte messages of the tests, small for thousands of idle connections.
const echoBufferSize = 2048

// runEcho is the hidden "echo -listen ADDR [-proxy]" subcommand: a TCP echo
// server, the backend of the connection-rate, request/response and idle
// tests; with -proxy, of the connection rate with a PROXY header. It
// copies through a buffer rather than io.Copy, which would splice and hold
// a pipe (two more fds) for every idle connection.
func runEcho(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on")
	proxy := fs.Bool("proxy", false, "read a PROXY protocol header (v1 or v2) first, as a server behind a proxy that sends one does")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	ctx, stop := untilSignal()
	defer stop()
	if *proxy {
		return acceptLoop(ctx, ln, echoProxyConn)
	}
	return acceptLoop(ctx, ln, echoConn)
}

// echoConn writes back whatever it reads until the peer closes.
func echoConn(c net.Conn) {
	defer c.Close()
	echoFrom(c, c)
}

// echoProxyConn reads a PROXY header, then echoes the rest; a connection
// without a valid header is closed.
func echoProxyConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, proxyHeaderBuffer)
	if _, err := proxyproto.Read(br); err != nil {
		return
	}
	echoFrom(c, br)
}

// proxyHeaderBuffer holds a v2 header with a few TLVs, or a v1 line, and
// the stream's first bytes that come with it.
const proxyHeaderBuffer = 512

// echoFrom writes to c whatever it reads from r until r ends.
func echoFrom(c net.Conn, r io.Reader) {
	buf := make([]byte, echoBufferSize)
	for {
		n, err := r.Read(buf)
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
