package admin

import (
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/stats"
)

const wantUDPTable = `
NAME   STATE  HEALTH  WEIGHT  FLOWS  TOTAL  BYTES IN  BYTES OUT  DATAGRAMS IN  DATAGRAMS OUT  ICMP ERRORS  FOREIGN DROPS  DROPPED
dns    -      -       -       3      12     4000      9000       40            38             -            -              max_flows 4, refused 1, foreign_source 2
  ns1  ready  -       1       3      12     4000      9000       40            37             1            2              -
`

// TestWriteStatsTable checks the text of every mix of protocols: TCP alone
// exactly as before UDP existed, UDP alone in its own columns, and both as
// two tables with TCP first whatever the frontends' order.
func TestWriteStatsTable(t *testing.T) {
	const header = "splicer 1.2.3  up 1h2m5s  pipes 3/4096  fds 42\n"
	tcpOnly := newFakeSource().Stats()
	udpOnly := tcpOnly
	udpOnly.Frontends = []stats.FrontendStats{udpFrontend()}
	udpFirst := tcpOnly
	udpFirst.Frontends = append([]stats.FrontendStats{udpFrontend()}, tcpOnly.Frontends...)
	quiet := udpFrontend()
	for reason := range quiet.Drops {
		quiet.Drops[reason] = 0
	}
	noDrops := tcpOnly
	noDrops.Frontends = []stats.FrontendStats{quiet}
	none := tcpOnly
	none.Frontends = nil

	tests := []struct {
		name string
		st   stats.Stats
		want string
	}{
		{"tcp", tcpOnly, wantTable},
		{"udp", udpOnly, header + wantUDPTable},
		{"udp first", udpFirst, wantTable + wantUDPTable},
		{"no drops", noDrops, header + strings.Replace(wantUDPTable, "max_flows 4, refused 1, foreign_source 2", "0", 1)},
		{"no frontends", none, header},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if err := WriteStatsTable(&out, tc.st); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("table:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}
