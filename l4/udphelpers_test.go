package l4

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

// udpBackend is a real UDP server on loopback: it answers every datagram
// with handler's reply (none when handler returns nil), from its own
// address unless handler says otherwise.
type udpBackend struct {
	conn     *net.UDPConn
	addr     netip.AddrPort
	received atomic.Int64
	wg       sync.WaitGroup
}

// udpReply is what a udpBackend handler sends back: data to the sender,
// from the backend's socket or, when via is set, from that other socket.
type udpReply struct {
	data []byte
	via  *net.UDPConn
}

func startUDPBackend(t testing.TB, handler func(p []byte) udpReply) *udpBackend {
	t.Helper()
	return startUDPBackendOn(t, net.IPv4(127, 0, 0, 1), handler)
}

// startUDPBackendOn is startUDPBackend on address ip.
func startUDPBackendOn(t testing.TB, ip net.IP, handler func(p []byte) udpReply) *udpBackend {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	b := &udpBackend{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			b.received.Add(1)
			r := handler(buf[:n])
			if r.data == nil {
				continue
			}
			out := c
			if r.via != nil {
				out = r.via
			}
			out.WriteToUDPAddrPort(r.data, from)
		}
	}()
	t.Cleanup(func() {
		c.Close()
		b.wg.Wait()
	})
	return b
}

// taggedEcho answers every datagram with tag followed by the datagram.
func taggedEcho(tag byte) func([]byte) udpReply {
	return func(p []byte) udpReply {
		return udpReply{data: append([]byte{tag}, p...)}
	}
}

// udpConfig builds a one-frontend UDP config named "fe" on 127.0.0.1:0
// with the given backends (weight 1 each) and no health check, then lets
// mutate adjust the frontend.
func udpConfig(t testing.TB, backends []netip.AddrPort, mutate func(b *config.FrontendBuilder)) *config.Config {
	t.Helper()
	fb := config.New().Workers(2).ConnectionsBuffer(testLogBuffer).Frontend("fe").Protocol(config.ProtocolUDP).
		Listen("127.0.0.1:0").HealthCheck(config.CheckNone).LogConnections(config.LogAll)
	return buildConfig(t, fb, backends, mutate)
}

// udpClient is a client socket connected to a frontend: the kernel drops
// any reply that does not come from the frontend's address.
func udpClient(t testing.TB, to netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// udpExchange sends p and waits up to d for one reply.
func udpExchange(c *net.UDPConn, p []byte, d time.Duration) ([]byte, error) {
	if _, err := c.Write(p); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// counters reads frontend "fe"'s counters.
func counters(t testing.TB, s *Server) FrontendCounters {
	t.Helper()
	c, ok := s.Counters("fe")
	if !ok {
		t.Fatal("no frontend fe")
	}
	return c
}

// drops sums c's drops over every reason.
func totalDrops(c FrontendCounters) uint64 {
	var n uint64
	for _, d := range c.Drops {
		n += d
	}
	return n
}
