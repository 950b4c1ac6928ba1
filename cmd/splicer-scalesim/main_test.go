package main

import (
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, ""},
		{[]string{"-clients", "400", "-held", "100"}, ""},
		{[]string{"-clients", "0"}, "-clients 0"},
		{[]string{"-clients", "1000", "-held", "300"}, "-held 300"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.err)
		}
	}
}

// TestAddresses: the client addresses are distinct and in 198.18.0.0/16,
// clear of the subnet's first block; the instances' and backends' are in
// 198.19.0.0/16; nothing of the simulation leaves 198.18.0.0/15.
func TestAddresses(t *testing.T) {
	bench := netip.MustParsePrefix("198.18.0.0/15")
	seen := map[netip.Addr]bool{}
	for i := range 60000 {
		a := clientAddr(i)
		if seen[a] || !clientNet.Contains(a) || a.As4()[2] == 0 && a.As4()[1] == 18 {
			t.Fatalf("client %d: %v", i, a)
		}
		seen[a] = true
	}
	for _, a := range []netip.Addr{vip, dnsAddr, lbAddr(1), lbAddr(3), routerSide(2), backendAddr(0), backendAddr(backendCount - 1)} {
		if !bench.Contains(a) || clientNet.Contains(a) {
			t.Errorf("%v outside 198.19.0.0/16", a)
		}
	}
}

func TestAgreementAndMoves(t *testing.T) {
	a := []answer{{backend: "b1"}, {backend: "b2"}, {backend: "b5"}, {backend: "b5"}}
	b := []answer{{backend: "b1"}, {backend: "b3"}, {backend: "b5"}, {backend: "b5"}}
	if n := agreement([][]answer{a, a, b}); n != 3 {
		t.Errorf("agreement %d, want 3", n)
	}
	after := []answer{{backend: "b1"}, {backend: "b3"}, {backend: "b2"}, {backend: "b4"}}
	if moved, fromGone, onGone := moves(a, after, "b5"); moved != 3 || fromGone != 2 || onGone != 2 {
		t.Errorf("moves %d, %d, %d; want 3, 2, 2", moved, fromGone, onGone)
	}
}

// TestConfigText: the instances' config loads.
func TestConfigText(t *testing.T) {
	for _, s := range []string{"maglev", "roundrobin"} {
		cfg, err := config.Parse([]byte(configText(s)), "splicer.toml")
		if err != nil {
			t.Fatal(err)
		}
		if fe := cfg.Frontends[0]; fe.Strategy != s || fe.Discovery.Type != config.DiscoverySRV || fe.Discovery.DNS.Resolvers[0].Addr() != dnsAddr {
			t.Errorf("%s: %+v", s, fe)
		}
	}
}
