package admin

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
)

// shortConnections is what the daemon reports after five connections, one
// at a time, that each opened and closed between two of the history's
// once-a-second samples: none of the samples saw one active (the window's
// peak of active is 0), the API's high-water mark says 1.
func shortConnections() stats.Stats {
	window := &stats.Rates{Window: 600, Now: stats.Point{Conns: 5}, Peak: stats.Point{Conns: 5}}
	be := *window
	return stats.Stats{Version: "1.2.3", MaxConnections: 10000, Frontends: []stats.FrontendStats{{
		Name: "web", Protocol: "tcp", Total: 5, Peak: 1, Rates: window,
		Backends: []stats.BackendStats{{Name: "app", State: "ready", Weight: 1, EffectiveWeight: 1,
			Health: stats.HealthStats{Up: true}, Total: 5, Peak: 1, Rates: &be}},
	}, {
		Name: "dns", Protocol: "udp", Total: 5, Peak: 1, Rates: window,
		Backends: []stats.BackendStats{{Name: "ns", State: "ready", Weight: 1, EffectiveWeight: 1,
			Health: stats.HealthStats{Up: true}, Total: 5, Peak: 1, Rates: &be}},
	}}}
}

// PEAK in `splicer stats` and `splicer top` is the API's peak, the most
// connections (UDP: flows) at once since the start, not the highest of the
// history's samples, which short connections fall between: after five
// connections of a few milliseconds it says 1, as the JSON does, not 0.
func TestPeakIsTheHighWaterMark(t *testing.T) {
	st := shortConnections()
	now := time.Now()
	var out strings.Builder
	if err := WriteStatsTable(&out, st, now); err != nil {
		t.Fatal(err)
	}
	v := &topView{addr: "http://127.0.0.1:9090", st: st}
	lines, _, _ := v.table(now)
	for view, text := range map[string]string{"stats": out.String(), "top": strings.Join(lines, "\n")} {
		for _, name := range []string{"web", "app", "dns", "ns"} {
			if got := column(t, text, name, "PEAK"); got != "1" {
				t.Errorf("splicer %s: %s's PEAK %q, want 1 (the API's peak):\n%s", view, name, got, text)
			}
		}
	}
}

// column is the cell under heading in name's row of a table printed by
// splicer stats or top: the nearest NAME line above the row gives the
// headings; cells are split at runs of two spaces or more.
func column(t *testing.T, table, name, heading string) string {
	t.Helper()
	split := regexp.MustCompile(`\s{2,}`)
	var header []string
	for _, line := range strings.Split(table, "\n") {
		cells := split.Split(strings.TrimSpace(line), -1)
		if cells[0] == "NAME" {
			header = cells
			continue
		}
		if cells[0] != name || header == nil {
			continue
		}
		for i, h := range header {
			if h == heading && i < len(cells) {
				return cells[i]
			}
		}
	}
	t.Fatalf("no %s cell for %s in:\n%s", heading, name, table)
	return ""
}
