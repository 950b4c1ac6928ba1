package daemon

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/demo"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestRunCutsConnectionsAtShutdownTimeout holds a connection open across a
// stop: Run must wait for it no longer than shutdown_timeout, close it, log
// that it did, and return without error.
func TestRunCutsConnectionsAtShutdownTimeout(t *testing.T) {
	back, err := demo.Start(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	const timeout = 300 * time.Millisecond
	cfg, err := config.New().ShutdownTimeout(timeout).AdminListen("").
		Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	d, err := New(cfg, zerolog.New(&logs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	c, err := net.Dial("tcp", frontAddr(t, d))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "hello") {
		t.Fatalf("greeting %q, %v", line, err)
	}

	stopped := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(stopped); d < timeout || d > timeout+time.Second {
		t.Errorf("Run returned %v after the stop, want about %v", d, timeout)
	}
	// Cut with its stream unfinished, the connection ends with a reset
	// (issue 14, graceful stop), never a FIN that would pass for its end.
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after the shutdown deadline: %v, want ECONNRESET", err)
	}
	if fc, _ := d.srv.Counters("t"); fc.Closed[l4.CauseShutdown] != 1 {
		t.Errorf("frontend t counted %d shutdown ends, want 1 (all: %v)", fc.Closed[l4.CauseShutdown], fc.Closed)
	}
	if !strings.Contains(logs.String(), `"message":"shutdown timeout reached; remaining connections closed"`) ||
		!strings.Contains(logs.String(), "1 connections closed") {
		t.Errorf("log lacks the cut connection:\n%s", logs.String())
	}
}
