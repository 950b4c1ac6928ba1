package main

import (
	"bufio"
	"maps"
	"strings"
	"testing"
)

func TestParseListening(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0A00000B:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
`
	got, err := parseListening(bufio.NewScanner(strings.NewReader(table)))
	if err != nil {
		t.Fatal(err)
	}
	// 8080 on loopback and 22 on the wildcard listen; 8081 is an
	// established connection, 80 listens on another address.
	want := map[int]bool{8080: true, 22: true}
	if !maps.Equal(got, want) {
		t.Fatalf("parseListening = %v, want %v", got, want)
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
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[int]bool)
	for _, p := range ports {
		if p <= 0 || p > 65535 || seen[p] {
			t.Fatalf("freePorts(3) = %v: want three distinct valid ports", ports)
		}
		seen[p] = true
	}
}
