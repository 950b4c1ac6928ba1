package admin

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/splicerlb/splicer/pkg/stats"
)

// protocolUDP is FrontendStats.Protocol of a UDP frontend.
const protocolUDP = "udp"

// maxCheckText bounds the last check's message in a table cell; the whole
// message is in the JSON.
const maxCheckText = 48

// WriteStatsTable prints st as a header line and then one aligned table for
// the TCP frontends and one for the UDP frontends, each left out when it
// would be empty and separated by a blank line: each frontend's totals,
// then its backends indented under it; "-" marks a column that does not
// apply to a row. The tables differ in columns because the protocols do: a
// UDP frontend counts flows, datagrams and drops by reason, and behind it a
// backend's failures are the ICMP errors it sent. Counts are exact, not
// rounded, so two runs can be subtracted; the /S columns are per second,
// the latest second and the peak of the history's window ("now/peak").
// Ages (SINCE, the time since the last health change) are taken at now.
func WriteStatsTable(w io.Writer, st stats.Stats, now time.Time) error {
	uptime := time.Duration(st.Uptime * float64(time.Second)).Round(time.Second)
	head := fmt.Sprintf("splicer %s  up %s  connections %d/%d  pipes %d/%d  fds %d",
		st.Version, uptime, st.Connections, st.MaxConnections, st.PipesInUse, st.PipesMax, st.FDs)
	if win := ratesWindow(st); win > 0 {
		head += fmt.Sprintf("  (/S: per second, now/peak of the last %s)", shortDuration(win))
	}
	if _, err := fmt.Fprintln(w, head); err != nil {
		return err
	}
	var tcp, udp []stats.FrontendStats
	for _, fe := range st.Frontends {
		if fe.Protocol == protocolUDP {
			udp = append(udp, fe)
		} else {
			tcp = append(tcp, fe)
		}
	}
	for _, table := range []struct {
		frontends []stats.FrontendStats
		write     func(*tabwriter.Writer, []stats.FrontendStats, time.Time)
	}{{tcp, writeTCPRows}, {udp, writeUDPRows}} {
		if len(table.frontends) == 0 {
			continue
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		// Writes to tw only buffer; Flush reports any error of w.
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		table.write(tw, table.frontends, now)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// ratesWindow is the longest window any rates of st cover.
func ratesWindow(st stats.Stats) time.Duration {
	var win float64
	for _, fe := range st.Frontends {
		if fe.Rates != nil {
			win = max(win, fe.Rates.Window)
		}
		for _, b := range fe.Backends {
			if b.Rates != nil {
				win = max(win, b.Rates.Window)
			}
		}
	}
	return time.Duration(win * float64(time.Second))
}

func writeTCPRows(tw *tabwriter.Writer, frontends []stats.FrontendStats, now time.Time) {
	fmt.Fprintln(tw, "NAME\tSTATE\tHEALTH\tSINCE\tWEIGHT\tACTIVE\tPEAK\tMAX\tQUEUE\tCONN/S\tIN/S\tOUT/S\tERR/S\tCONNECT P50\tP99\tTOTAL\tFAILED\tRESETS\tLAST CHECK")
	for _, fe := range frontends {
		r := fe.Rates
		fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t-\t-\t%d\t%d\t-\t-\n",
			fe.Name, fe.Active, fe.Peak, limit(fe.MaxConnections),
			queueText(fe.QueuedNow, r), nowPeak(r, count, connsOf), nowPeak(r, byteRate, bytesInOf),
			nowPeak(r, byteRate, bytesOutOf), nowPeak(r, count, errorsOf), fe.Total, fe.Rejected)
		for _, b := range fe.Backends {
			r := b.Rates
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t-\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n",
				b.Name, b.State, healthWord(b.Health), since(b.Health, now), weightText(b),
				b.Active, b.Peak, limit(b.MaxConnections),
				nowPeak(r, count, connsOf), nowPeak(r, byteRate, bytesInOf), nowPeak(r, byteRate, bytesOutOf),
				nowPeak(r, count, errorsOf), millis(b.ConnectP50), millis(b.ConnectP99),
				b.Total, sum(b.ConnectFailures), b.Resets, checkText(b.Health))
		}
	}
}

// writeUDPRows puts DROPPED last: its text has no fixed width, and the last
// cell of a row does not widen a column.
func writeUDPRows(tw *tabwriter.Writer, frontends []stats.FrontendStats, now time.Time) {
	fmt.Fprintln(tw, "NAME\tSTATE\tHEALTH\tSINCE\tWEIGHT\tFLOWS\tPEAK\tFLOWS/S\tIN/S\tOUT/S\tTOTAL\tDATAGRAMS IN\tDATAGRAMS OUT\tICMP ERRORS\tFOREIGN DROPS\tLAST CHECK\tDROPPED")
	for _, fe := range frontends {
		r := fe.Rates
		fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t-\t-\t-\t%s\n", fe.Name, fe.Active,
			fe.Peak, nowPeak(r, count, connsOf),
			nowPeak(r, byteRate, bytesInOf), nowPeak(r, byteRate, bytesOutOf),
			fe.Total, fe.DatagramsIn, fe.DatagramsOut, dropsText(fe.Drops))
		for _, b := range fe.Backends {
			r := b.Rates
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t-\n",
				b.Name, b.State, healthWord(b.Health), since(b.Health, now), weightText(b), b.Active,
				b.Peak, nowPeak(r, count, connsOf),
				nowPeak(r, byteRate, bytesInOf), nowPeak(r, byteRate, bytesOutOf), b.Total,
				b.DatagramsIn, b.DatagramsOut, sum(b.ConnectFailures), b.ForeignDrops, checkText(b.Health))
		}
	}
}

func connsOf(p stats.Point) float64    { return p.Conns }
func bytesInOf(p stats.Point) float64  { return p.BytesIn }
func bytesOutOf(p stats.Point) float64 { return p.BytesOut }
func errorsOf(p stats.Point) float64   { return p.Errors }

// nowPeak is "now/peak" of one figure of r, each formatted by f; "-"
// without rates.
func nowPeak(r *stats.Rates, f func(float64) string, of func(stats.Point) float64) string {
	if r == nil {
		return "-"
	}
	return f(of(r.Now)) + "/" + f(of(r.Peak))
}

// queueText is the clients queued now and the peak.
func queueText(now int, r *stats.Rates) string {
	if r == nil {
		return strconv.Itoa(now)
	}
	return strconv.Itoa(now) + "/" + strconv.FormatFloat(r.Peak.Queued, 'f', 0, 64)
}

// count formats a rate of events: whole numbers from 100 on, one decimal
// below, "0" for none.
func count(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// byteRate formats bytes per second with decimal units, as network rates
// are: 950, 12k, 3.4M, 1.1G.
func byteRate(v float64) string {
	units := []string{"", "k", "M", "G", "T"}
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if i == 0 || v >= 10 {
		return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}

// dropsText lists the non-zero drops in stats.DropReasons order, or "0".
func dropsText(drops map[string]uint64) string {
	var parts []string
	for _, reason := range stats.DropReasons() {
		if n := drops[reason]; n > 0 {
			parts = append(parts, reason+" "+strconv.FormatUint(n, 10))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

func sum(counts map[string]uint64) uint64 {
	var total uint64
	for _, n := range counts {
		total += n
	}
	return total
}

func healthWord(h stats.HealthStats) string {
	switch {
	case !h.Checked:
		return "-"
	case h.Up:
		return "up"
	default:
		return "DOWN"
	}
}

// since is how long ago the backend's health last changed, "-" if it has
// not changed since the daemon started.
func since(h stats.HealthStats, now time.Time) string {
	if !h.Checked || h.LastChange.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(h.LastChange))
}

// checkText says what the last health check found: "ok" or its failure,
// with the time it took; for passive detection, the failures in a row.
// Long messages are cut; the JSON has them whole.
func checkText(h stats.HealthStats) string {
	switch {
	case !h.Checked:
		return "-"
	case h.Check == "none":
		text := fmt.Sprintf("passive, %d failures in a row", h.PassiveFailures)
		if !h.Up && h.LastMessage != "" {
			text = "passive: " + h.LastMessage
		}
		return truncate(text, maxCheckText)
	case h.LastCheck.IsZero():
		return "not yet"
	case h.LastOK:
		return "ok " + millis(h.LastDuration)
	}
	return truncate(h.LastMessage, maxCheckText-10) + " " + millis(h.LastDuration)
}

// truncate cuts s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// shortDuration spells d in its two largest units, leaving out a second
// one that is zero: 45s, 12m3s, 10m, 3h5m, 2d4h.
func shortDuration(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	two := func(a int64, ua string, b int64, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d%s", a, ua)
		}
		return fmt.Sprintf("%d%s%d%s", a, ua, b, ub)
	}
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return two(s/60, "m", s%60, "s")
	case s < 86400:
		return two(s/3600, "h", s%3600/60, "m")
	}
	return two(s/86400, "d", s%86400/3600, "h")
}

// weightText shows the effective weight beside the configured one only
// while they differ, as during slow start.
func weightText(b stats.BackendStats) string {
	if b.EffectiveWeight == b.Weight {
		return strconv.Itoa(b.Weight)
	}
	return fmt.Sprintf("%d (%d)", b.Weight, b.EffectiveWeight)
}

// limit shows a cap, "-" for none.
func limit(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func millis(s float64) string { return strconv.FormatFloat(s*1000, 'f', 2, 64) + "ms" }
