package admin

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestConnectionCap holds the admin port's connections at its cap: the
// next client waits in the backlog, unserved, until one closes.
func TestConnectionCap(t *testing.T) {
	s := newTestServer(newFakeSource(), Options{MaxConnections: 3})
	addr := strings.TrimPrefix(serveTCP(t, s), "http://")
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	testutil.WaitFor(t, browserWait, "3 admin connections open", func() bool { return s.OpenConnections() == 3 })

	extra, err := net.Dial("tcp", addr) // accepted by the kernel, not by the server
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	io.WriteString(extra, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the fourth connection was served past the cap: %v", err)
	}
	if n := s.OpenConnections(); n != 3 {
		t.Errorf("%d open, want 3", n)
	}
	held[0].Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a slot freed: %v %v", resp, err)
	}
	resp.Body.Close()
}

// gatedSource blocks Stats until the gate opens, to hold requests in
// flight.
type gatedSource struct {
	*fakeSource
	gate    chan struct{}
	waiting sync.WaitGroup
}

func (g *gatedSource) Stats() stats.Stats {
	g.waiting.Done()
	<-g.gate
	return g.fakeSource.Stats()
}

// TestRequestCap fills the in-flight cap: the next request is answered 503
// at once, and the held ones finish once released.
func TestRequestCap(t *testing.T) {
	src := &gatedSource{fakeSource: newFakeSource(), gate: make(chan struct{})}
	s := newTestServer(src, Options{MaxRequests: 2})
	h := s.Handler()
	src.waiting.Add(2)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() { codes[i] = do(t, h, "GET", "/api/v1/stats", "").status })
	}
	src.waiting.Wait() // both are inside Stats
	got := do(t, h, "GET", "/api/v1/stats", "")
	if got.status != http.StatusServiceUnavailable || got.header.Get("Retry-After") != "1" ||
		got.body != `{"error":"admin port busy: 2 requests in flight (admin.max_requests)"}`+"\n" {
		t.Errorf("third request: %d %q %s", got.status, got.header.Get("Retry-After"), got.body)
	}
	close(src.gate)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("held requests: %v", codes)
	}
	src.waiting.Add(1)
	if got := do(t, h, "GET", "/api/v1/stats", ""); got.status != 200 {
		t.Errorf("after release: %d", got.status)
	}
}
