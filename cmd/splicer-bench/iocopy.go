package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// runIOCopy is the hidden "iocopy -route LISTEN=BACKEND ..." subcommand: the
// goroutine-per-connection proxy a Go developer writes first. It is a fair
// baseline, not a straw man: io.Copy between two *net.TCPConn splices, so
// bytes never enter user space here either. Its cost is elsewhere: two
// goroutines and two pipes (four fds) per connection for the connection's
// whole life, idle or not.
func runIOCopy(args []string) error {
	fs := flag.NewFlagSet("iocopy", flag.ContinueOnError)
	var routes routeFlag
	fs.Var(&routes, "route", "`LISTEN=BACKEND` to proxy (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(routes) == 0 {
		return fmt.Errorf("iocopy: no -route given")
	}
	// Bind every listener before serving any, so that one answering proves
	// all are up.
	lns := make([]net.Listener, len(routes))
	for i, r := range routes {
		ln, err := net.Listen("tcp", r.listen)
		if err != nil {
			return fmt.Errorf("iocopy: %w", err)
		}
		lns[i] = ln
	}
	ctx, stop := untilSignal()
	defer stop()
	var wg sync.WaitGroup
	for i, r := range routes {
		wg.Go(func() { _ = acceptLoop(ctx, lns[i], func(c net.Conn) { proxyConn(c, r.backend) }) })
	}
	wg.Wait()
	return nil
}

// proxyConn relays client to a new connection to backend and back, passing
// on each half-close, until both directions are done.
func proxyConn(client net.Conn, backend string) {
	defer client.Close()
	server, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(server, client)
		server.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(client, server)
	client.(*net.TCPConn).CloseWrite()
	<-done
}

// routeFlag collects repeated -route LISTEN=BACKEND flags.
type routeFlag []route

// String lists the routes in flag syntax.
func (f *routeFlag) String() string {
	s := make([]string, len(*f))
	for i, r := range *f {
		s[i] = r.listen + "=" + r.backend
	}
	return strings.Join(s, ",")
}

// Set adds one LISTEN=BACKEND route.
func (f *routeFlag) Set(v string) error {
	listen, backend, ok := strings.Cut(v, "=")
	if !ok || listen == "" || backend == "" {
		return fmt.Errorf("want LISTEN=BACKEND, got %q", v)
	}
	*f = append(*f, route{listen: listen, backend: backend})
	return nil
}
