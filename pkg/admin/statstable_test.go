package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
)

const wantHeader = "splicer 1.2.3  up 1h2m5s  connections 2/10000  pipes 3/4096  fds 42  (/S: per second, now/peak of the last 10m)\n"

// wantTCPTable is the fake source's TCP frontends: a frontend's FAILED is
// the clients it refused (the JSON's "rejected"), a backend's its failed
// connects; SINCE is taken an hour and five seconds after the start.
const wantTCPTable = `
NAME          STATE  HEALTH  SINCE  WEIGHT   ACTIVE  PEAK  MAX  QUEUE  CONN/S    IN/S      OUT/S      ERR/S    CONNECT P50  P99     TOTAL  FAILED  RESETS  LAST CHECK
pg            -      -       -      -        2       6     100  1/4    12.5/140  1.5k/12k  2.5M/3.2M  0.5/2.0  -            -       10     1       -       -
  a           ready  up      59m5s  100      2       6     50   -      12.5/140  1.5k/12k  2.5M/3.2M  0.5/2.0  0.50ms       1.00ms  7      3       1       ok 1.50ms
  [::1]:5433  drain  DOWN    -      50 (10)  0       1     -    -      -         -         -          -        0.00ms       0.00ms  3      0       0       connect: connection refused 0.20ms
cache         -      -       -      -        0       0     -    0      -         -         -          -        -            -       0      0       -       -
`

const wantUDPTable = `
NAME   STATE  HEALTH  SINCE  WEIGHT  FLOWS  PEAK  FLOWS/S  IN/S  OUT/S  TOTAL  DATAGRAMS IN  DATAGRAMS OUT  ICMP ERRORS  FOREIGN DROPS  LAST CHECK  DROPPED
dns    -      -       -      -       3      4     -        -     -      12     40            38             -            -              -           max_flows 4, refused 1, foreign_source 2
  ns1  ready  -       -      1       3      4     -        -     -      12     40            37             1            2              -           -
`

// TestWriteStatsTable checks the text of every mix of protocols: TCP alone,
// UDP alone in its own columns, and both as two tables with TCP first
// whatever the frontends' order.
func TestWriteStatsTable(t *testing.T) {
	tcpOnly := newFakeSource().Stats()
	now := tcpOnly.StartedAt.Add(time.Hour + 5*time.Second)
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
	noRates := strings.Replace(wantHeader, "  (/S: per second, now/peak of the last 10m)", "", 1)

	tests := []struct {
		name string
		st   stats.Stats
		want string
	}{
		{"tcp", tcpOnly, wantHeader + wantTCPTable},
		{"udp", udpOnly, noRates + wantUDPTable},
		{"udp first", udpFirst, wantHeader + wantTCPTable + wantUDPTable},
		{"no drops", noDrops, noRates + strings.Replace(wantUDPTable, "max_flows 4, refused 1, foreign_source 2", "0", 1)},
		{"no frontends", none, noRates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if err := WriteStatsTable(&out, tc.st, now); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("table:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}

// TestCheckText covers each kind of health a backend can report in the
// LAST CHECK column.
func TestCheckText(t *testing.T) {
	long := strings.Repeat("x", 60)
	tests := []struct {
		h    stats.HealthStats
		want string
	}{
		{stats.HealthStats{Up: true}, "-"},
		{stats.HealthStats{Checked: true, Check: "tcp", Up: true}, "not yet"},
		{stats.HealthStats{Checked: true, Check: "tcp", Up: true, LastOK: true, LastDuration: 0.002, LastCheck: time.Unix(1, 0)}, "ok 2.00ms"},
		{stats.HealthStats{Checked: true, Check: "tcp", LastMessage: long, LastDuration: 0.001, LastCheck: time.Unix(1, 0)},
			strings.Repeat("x", 37) + "… 1.00ms"},
		{stats.HealthStats{Checked: true, Check: "none", Up: true, PassiveFailures: 2}, "passive, 2 failures in a row"},
		{stats.HealthStats{Checked: true, Check: "none", LastMessage: "connection reset by backend"}, "passive: connection reset by backend"},
	}
	for _, tc := range tests {
		if got := checkText(tc.h); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.h, got, tc.want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 45 * time.Second: "45s", 12*time.Minute + 3*time.Second: "12m3s", 10 * time.Minute: "10m",
		3*time.Hour + 5*time.Minute + 9*time.Second: "3h5m", 50 * time.Hour: "2d2h", 48 * time.Hour: "2d",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

func TestByteRate(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 950: "950", 1000: "1.0k", 12345: "12k", 3.4e6: "3.4M", 1.1e9: "1.1G", 2e15: "2000T"} {
		if got := byteRate(v); got != want {
			t.Errorf("%v: %q, want %q", v, got, want)
		}
	}
}
