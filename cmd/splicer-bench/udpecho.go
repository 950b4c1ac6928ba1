package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxDatagram is the largest UDP payload: the echo server's buffer holds
// any datagram whole, so it never truncates what it sends back.
const maxDatagram = 65535

// runUDPEcho is the hidden "udpecho -listen ADDR" subcommand: the UDP echo
// backend of the UDP tests. It serves one SO_REUSEPORT socket per CPU, each
// read by its own goroutine, so that it keeps ahead of any proxy in front
// of it: the kernel spreads the flows over the sockets.
func runUDPEcho(args []string) error {
	fs := flag.NewFlagSet("udpecho", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	conns, err := listenUDPEcho(*listen, runtime.NumCPU())
	if err != nil {
		return fmt.Errorf("udpecho: %w", err)
	}
	ctx, stop := untilSignal()
	defer stop()
	if _, err := serveUDPEcho(ctx, conns); err != nil {
		return fmt.Errorf("udpecho: %w", err)
	}
	return nil
}

// listenUDPEcho binds n sockets to addr with SO_REUSEPORT. The first
// socket's address is used for the others, so addr may have port 0.
func listenUDPEcho(addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: reusePort}
	conns := make([]*net.UDPConn, 0, n)
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("listen: %w", err)
		}
		c := pc.(*net.UDPConn)
		conns = append(conns, c)
		addr = c.LocalAddr().String()
	}
	return conns, nil
}

// reusePort sets SO_REUSEPORT on a socket before it is bound.
func reusePort(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", serr)
	}
	return nil
}

// serveUDPEcho echoes on every socket of conns until ctx ends, which closes
// them, and returns how many datagrams it echoed: tests compare that with
// what the load generator counted. The error is the first read failure
// other than the close.
func serveUDPEcho(ctx context.Context, conns []*net.UDPConn) (int, error) {
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()
	echoed := make([]int, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { echoed[i], errs[i] = udpEchoLoop(c) })
	}
	wg.Wait()
	total := 0
	for _, n := range echoed {
		total += n
	}
	return total, errors.Join(errs...)
}

// udpEchoLoop sends every datagram back to its sender until c is closed,
// and returns how many it read. A failed send is not an error: the client
// counts the missing echo as lost, as it would a drop on the network.
func udpEchoLoop(c *net.UDPConn) (int, error) {
	buf := make([]byte, maxDatagram)
	for n := 0; ; n++ {
		size, from, err := c.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read: %w", err)
		}
		_, _ = c.WriteToUDPAddrPort(buf[:size], from)
	}
}
