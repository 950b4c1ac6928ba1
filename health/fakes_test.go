package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// serve runs a loopback TCP server calling handle on each accepted conn
// (which serve closes afterwards) until the test ends; cleanup waits for
// every handler, so handlers must return once the client hangs up.
func serve(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// serveUDP answers every datagram with reply(datagram) until the test ends.
func serveUDP(t *testing.T, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := pc.WriteTo(reply(buf[:n]), from); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// replyAfter returns a handler that reads n request bytes, writes reply and
// then waits for the client to hang up (so the client sees no reset).
func replyAfter(n int, reply string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			return
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	}
}

// closeAfter returns a handler that reads n request bytes, writes reply and
// closes the conn.
func closeAfter(n int, reply string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			return
		}
		_, _ = io.WriteString(c, reply)
	}
}

// probeCase is one probe against one fake server: Msg holds %s where the
// probed address goes.
type probeCase struct {
	name    string
	health  config.Health
	server  func(net.Conn) // nil: probe a closed port
	timeout time.Duration  // 0: 5s
	ok      bool
	msg     string
}

// runProbeCases runs each case through NewChecker against its own server.
func runProbeCases(t *testing.T, cases []probeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := testutil.RefusedAddr(t, "tcp")
			if tc.server != nil {
				addr = serve(t, tc.server)
			}
			c, err := NewChecker(tc.health)
			if err != nil {
				t.Fatalf("NewChecker: %v", err)
			}
			checkResult(t, c, addr, tc.timeout, tc.ok, fmt.Sprintf(tc.msg, addr))
		})
	}
}

// checkResult probes addr with c and asserts the verdict and the message.
func checkResult(t *testing.T, c Checker, addr netip.AddrPort, timeout time.Duration, ok bool, msg string) Result {
	t.Helper()
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	r := c.Check(ctx, addr)
	if r.OK != ok || r.Msg != msg {
		t.Errorf("Check(%s) = OK %v, %q\nwant OK %v, %q", addr, r.OK, r.Msg, ok, msg)
	}
	if r.Duration <= 0 || r.Duration > timeout+time.Second {
		t.Errorf("Duration = %v, want in (0, %v]", r.Duration, timeout+time.Second)
	}
	return r
}

// readRESP reads one RESP command (an array of bulk strings).
func readRESP(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return nil, err
	}
	args := make([]string, 0, n)
	for range n {
		hdr, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args = append(args, string(buf[:size]))
	}
	return args, nil
}

// fakeRedis answers AUTH and PING: auth maps a password to its reply, ping
// is PING's reply line.
func fakeRedis(auth map[string]string, ping string) func(net.Conn) {
	return fakeRedisServer(auth, map[string]string{"PING": ping + "\r\n"})
}
