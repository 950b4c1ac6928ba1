package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// lineServer is a backend that answers each line it reads with the same
// line, and keeps the first line of each connection that sent one (the
// clients, not the health check's probes, which connect and close). Closing its listener
// refuses new connections (the probes fail) and leaves the open ones
// serving, until the load balancer cuts them.
type lineServer struct {
	ln    net.Listener
	mu    sync.Mutex
	first map[string]bool
}

func startLineServer(t *testing.T) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{ln: ln, first: make(map[string]bool)}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for first := true; ; first = false {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if first {
						s.mu.Lock()
						s.first[line] = true
						s.mu.Unlock()
					}
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *lineServer) addr() string { return s.ln.Addr().String() }

func (s *lineServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.first)
}

func (s *lineServer) has(first string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first[first]
}

// TestHealthDownLineCounts: with on_down = "close", the "backend down" line
// of a backend that had clients says exactly how many of the frontend's
// backends are left up (not counting one down from the start), how many
// it has, and how many connections going down closed: the connections
// that were open to that backend, which all see a reset, while those of
// the backend still up go on.
func TestHealthDownLineCounts(t *testing.T) {
	a, b := startLineServer(t), startLineServer(t)
	dead := testutil.RefusedAddr(t, "tcp")
	const interval = 50 * time.Millisecond
	cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").
		OnDown(config.OnDownClose).Strategy(config.StrategyRoundRobin).
		Backend(a.addr(), 1).Backend(b.addr(), 1).Backend(dead.String(), 1).
		HealthCheck("tcp").HealthInterval(interval).HealthTimeout(probeTimeout).HealthFall(1).Build()
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	d := runWithLogger(t, cfg, zerolog.New(&logs), Options{})
	front := frontAddr(t, d)
	bes := d.srv.Backends("t")
	testutil.WaitFor(t, 10*time.Second, "the dead backend marked down", func() bool { return !bes[2].Healthy() })

	// Clients until both live backends have at least two, each
	// answering: the round robin puts half on each.
	var clients []net.Conn
	var readers []*bufio.Reader
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	for i := 0; a.count() < 2 || b.count() < 2; i++ {
		if i == 20 {
			t.Fatalf("after 20 clients, %d on a and %d on b", a.count(), b.count())
		}
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		readers = append(readers, r)
		hello := fmt.Sprintf("client %d\n", i)
		if _, err := io.WriteString(c, hello); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); err != nil || line != hello {
			t.Fatalf("client %d: %q, %v", i, line, err)
		}
	}
	onA := a.count()

	a.ln.Close() // a's probes are refused from now on
	testutil.WaitFor(t, 10*time.Second, "backend a marked down", func() bool { return !bes[0].Healthy() })

	// The clients of a are reset, those of b still answered.
	for i, c := range clients {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if a.has(fmt.Sprintf("client %d\n", i)) {
			if _, err := readers[i].ReadString('\n'); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client %d after its backend went down: %v, want a reset", i, err)
			}
			continue
		}
		if _, err := io.WriteString(c, "again\n"); err != nil {
			t.Errorf("client %d of the backend still up: %v", i, err)
		} else if line, err := readers[i].ReadString('\n'); err != nil || line != "again\n" {
			t.Errorf("client %d of the backend still up: %q, %v", i, line, err)
		}
	}

	var line map[string]any
	testutil.WaitFor(t, 5*time.Second, "the down line of backend a", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "backend down" && m["backend"] == a.addr() {
				line = m
				return true
			}
		}
		return false
	})
	for k, want := range map[string]float64{"backends_up": 1, "backends": 3, "connections_closed": float64(onA)} {
		if got, ok := line[k].(float64); !ok || got != want {
			t.Errorf("%s = %v, want %v: %v", k, line[k], want, line)
		}
	}
	if line["level"] != "warn" || line["backend_address"] != a.addr() || line["error"] == nil {
		t.Errorf("down line %v: want level warn, backend_address %s and the probe's error", line, a.addr())
	}
}
