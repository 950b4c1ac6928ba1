package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/proxyproto"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// proxyServer reads a PROXY header from every connection, reports it on
// seen (an error when there is none), and hands the rest to then.
func proxyServer(t *testing.T, seen chan<- error, then func(r *bufio.Reader, c net.Conn)) netip.AddrPort {
	return serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		if err == nil && (h.Addressed() || (h.Version == 2 && h.Command != proxyproto.Local)) {
			err = io.ErrUnexpectedEOF // a check must not claim a client
		}
		seen <- err
		if err == nil {
			then(br, c)
		}
	})
}

// Probes to a backend that reads PROXY headers open with the header of a
// check (v2 LOCAL, v1 UNKNOWN) for every kind of probe that dials; a
// probe to a side port, or to a backend not listed, sends none.
func TestProbesSendProxyHeader(t *testing.T) {
	cases := []struct {
		health config.Health
		then   func(r *bufio.Reader, c net.Conn)
	}{
		{config.Health{Check: config.CheckTCP}, func(*bufio.Reader, net.Conn) {}},
		{config.Health{Check: config.CheckSendExpect, Send: "PING\r\n", Expect: "+PONG"}, func(r *bufio.Reader, c net.Conn) {
			if line, _ := r.ReadString('\n'); line == "PING\r\n" {
				io.WriteString(c, "+PONG\r\n")
			}
		}},
		{config.Health{Check: config.CheckHTTP, Path: "/health", Status: 200}, func(r *bufio.Reader, c net.Conn) {
			if line, _ := r.ReadString('\n'); strings.HasPrefix(line, "GET /health ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}
		}},
	}
	for _, version := range []int{1, 2} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s v%d", tc.health.Check, version), func(t *testing.T) {
				seen := make(chan error, 4)
				addr := proxyServer(t, seen, tc.then)
				c, err := NewChecker(tc.health, WithProxyHeaders(ProxyHeaders{addr: version}))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				if r := c.Check(ctx, addr); !r.OK {
					t.Errorf("v%d: %s", version, r.Msg)
				}
				if err := <-seen; err != nil {
					t.Errorf("v%d: the backend read no check header: %v", version, err)
				}
			})
		}
	}
	t.Run("side port", func(t *testing.T) {
		side := serve(t, replyAfter(6, "+PONG\r\n")) // reads "PING\r\n" at once
		service := testutil.RefusedAddr(t, "tcp")
		c, err := NewChecker(config.Health{Check: config.CheckSendExpect, Send: "PING\r\n", Expect: "+PONG", Port: int(side.Port())},
			WithProxyHeaders(ProxyHeaders{service: 2, side: 2}))
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, c, service, 0, true, "send_expect probe "+side.String()+": reply matched")
	})
	t.Run("not listed", func(t *testing.T) {
		addr := serve(t, replyAfter(6, "+PONG\r\n"))
		other := testutil.RefusedAddr(t, "tcp")
		c, err := NewChecker(config.Health{Check: config.CheckSendExpect, Send: "PING\r\n", Expect: "+PONG"},
			WithProxyHeaders(ProxyHeaders{other: 2}))
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, c, addr, 0, true, "send_expect probe "+addr.String()+": reply matched")
	})
}
