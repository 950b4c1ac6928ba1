package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseOptionsSuites(t *testing.T) {
	tests := []struct {
		args    []string
		want    []suite
		wantErr bool
	}{
		{nil, []suite{suiteTCP, suiteUDP, suiteApp, suiteHealth}, false},
		{[]string{"-tests", "all"}, []suite{suiteTCP, suiteUDP, suiteApp, suiteHealth}, false},
		{[]string{"-tests", "tcp"}, []suite{suiteTCP}, false},
		{[]string{"-tests", "udp"}, []suite{suiteUDP}, false},
		{[]string{"-tests", "health, app"}, []suite{suiteApp, suiteHealth}, false},
		{[]string{"-tests", "sctp"}, nil, true},
		{[]string{"-tests", "tcp,"}, nil, true},
		{[]string{"-run", "("}, nil, true},
		{[]string{"-svg", "dir"}, nil, true},
	}
	for _, tt := range tests {
		o, err := parseOptions(tt.args, io.Discard)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseOptions(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			continue
		}
		if err == nil && !slices.Equal(o.suites, tt.want) {
			t.Errorf("parseOptions(%q) suites = %v, want %v", tt.args, o.suites, tt.want)
		}
	}
}

func TestTestsOfSuites(t *testing.T) {
	for _, s := range allSuites() {
		ts := testsOf([]suite{s})
		if len(ts) == 0 {
			t.Fatalf("suite %s has no test", s)
		}
		for _, tst := range ts {
			for _, m := range tst.metrics {
				if tst.suite != s || m.spec().suite != s {
					t.Errorf("suite %s: test %q (%s) fills row %q of suite %s", s, tst.name, tst.suite, m.spec().label, m.spec().suite)
				}
			}
		}
	}
}
