package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// The hidden subcommands (echo and iocopy) are servers that the harness runs
// as separate processes, so that their CPU time and memory are measured on
// their own and never mixed with the load generator's.

// untilSignal returns a context that ends on SIGTERM or SIGINT: how the
// harness stops the hidden subcommands.
func untilSignal() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}

// acceptLoop accepts connections on ln and runs handle on each in its own
// goroutine until ctx ends, which closes ln. A failing Accept (EMFILE when
// out of fds) backs off instead of spinning.
func acceptLoop(ctx context.Context, ln net.Listener, handle func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	backoff := time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			fmt.Fprintf(os.Stderr, "accept on %s: %v (retrying in %v)\n", ln.Addr(), err, backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = time.Millisecond
		go handle(c)
	}
}
