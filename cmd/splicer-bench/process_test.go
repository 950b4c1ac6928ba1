package main

import (
	"bufio"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

func TestParseListening(t *testing.T) {
	const tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0A00000B:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
`
	const udpTable = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5 2 0000000000000000 0
  101: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6 2 0000000000000000 0
  102: 0100007F:D431 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 7 2 0000000000000000 0
  103: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 8 2 0000000000000000 0
`
	tests := []struct {
		name, table, state string
		want               map[int]bool
	}{
		// 8080 on loopback and 22 on the wildcard listen; 8081 is an
		// established connection, 80 listens on another address.
		{"tcp", tcpTable, stateListen, map[int]bool{8080: true, 22: true}},
		// 53 on loopback and 5353 on the wildcard are bound; 54321 is a
		// connected client socket, 53 on 127.0.0.53 another address.
		{"udp", udpTable, stateUnbound, map[int]bool{53: true, 5353: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseListening(bufio.NewScanner(strings.NewReader(tt.table)), tt.state)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("parseListening = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ijk"} {
		if n, err := tb.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tb.String(); got != "defghijk" {
		t.Fatalf("tail = %q, want %q", got, "defghijk")
	}
}

func TestRouteFlag(t *testing.T) {
	var f routeFlag
	for _, v := range []string{"127.0.0.1:1=127.0.0.1:2", "127.0.0.1:3=127.0.0.1:4"} {
		if err := f.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if got, want := f.String(), "127.0.0.1:1=127.0.0.1:2,127.0.0.1:3=127.0.0.1:4"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	for _, bad := range []string{"127.0.0.1:1", "=127.0.0.1:2", "127.0.0.1:1="} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) succeeded, want an error", bad)
		}
	}
}

func TestFreePorts(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			ports, err := freePorts(network, 3)
			if err != nil {
				t.Fatal(err)
			}
			seen := make(map[int]bool)
			for _, p := range ports {
				if p <= 0 || p > 65535 || seen[p] {
					t.Fatalf("freePorts(%s, 3) = %v: want three distinct valid ports", network, ports)
				}
				seen[p] = true
			}
		})
	}
}

// TestListeningPortsSeesOwnSockets reads the real /proc/net tables: a
// listening TCP socket and a bound UDP socket must show as ready. A read of
// /proc/net/udp can skip entries while other processes open and close
// sockets by the thousand (the kernel walks hash buckets without a lock),
// which is why the harness polls it; so does this test.
func TestListeningPortsSeesOwnSockets(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			c, port, err := bindLoopback(network)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("port %d in /proc/net/%s", port, network), func() bool {
				open, err := listeningPorts(network)
				if err != nil {
					t.Fatal(err)
				}
				return open[port]
			})
		})
	}
}
