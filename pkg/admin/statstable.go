package admin

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
)

// protocolUDP is FrontendStats.Protocol of a UDP frontend.
const protocolUDP = "udp"

// WriteStatsTable prints st as a header line and then one aligned table for
// the TCP frontends and one for the UDP frontends, each left out when it
// would be empty and separated by a blank line: each frontend's totals,
// then its backends indented under it; "-" marks a column that does not
// apply to a frontend. The tables differ in columns because the protocols
// do: a UDP frontend counts flows, datagrams and drops by reason, and
// behind it a backend's failures are the ICMP errors it sent. Counts are
// exact, not rounded, so two runs can be subtracted.
func WriteStatsTable(w io.Writer, st stats.Stats) error {
	uptime := time.Duration(st.Uptime * float64(time.Second)).Round(time.Second)
	if _, err := fmt.Fprintf(w, "splicer %s  up %s  pipes %d/%d  fds %d\n",
		st.Version, uptime, st.PipesInUse, st.PipesMax, st.FDs); err != nil {
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
		write     func(*tabwriter.Writer, []stats.FrontendStats)
	}{{tcp, writeTCPRows}, {udp, writeUDPRows}} {
		if len(table.frontends) == 0 {
			continue
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		// Writes to tw only buffer; Flush reports any error of w.
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		table.write(tw, table.frontends)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func writeTCPRows(tw *tabwriter.Writer, frontends []stats.FrontendStats) {
	fmt.Fprintln(tw, "NAME\tSTATE\tHEALTH\tWEIGHT\tACTIVE\tTOTAL\tBYTES IN\tBYTES OUT\tCONNECT P50\tP99\tFAILED\tRESETS")
	for _, fe := range frontends {
		fmt.Fprintf(tw, "%s\t-\t-\t-\t%d\t%d\t%d\t%d\t-\t-\t-\t-\n", fe.Name, fe.Active, fe.Total, fe.BytesIn, fe.BytesOut)
		for _, b := range fe.Backends {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\n",
				b.Name, b.State, healthWord(b.Health), weightText(b), b.Active, b.Total,
				b.BytesIn, b.BytesOut, millis(b.ConnectP50), millis(b.ConnectP99), sum(b.ConnectFailures), b.Resets)
		}
	}
}

// writeUDPRows puts DROPPED last: its text has no fixed width, and the last
// cell of a row does not widen a column.
func writeUDPRows(tw *tabwriter.Writer, frontends []stats.FrontendStats) {
	fmt.Fprintln(tw, "NAME\tSTATE\tHEALTH\tWEIGHT\tFLOWS\tTOTAL\tBYTES IN\tBYTES OUT\tDATAGRAMS IN\tDATAGRAMS OUT\tICMP ERRORS\tFOREIGN DROPS\tDROPPED")
	for _, fe := range frontends {
		fmt.Fprintf(tw, "%s\t-\t-\t-\t%d\t%d\t%d\t%d\t%d\t%d\t-\t-\t%s\n", fe.Name, fe.Active, fe.Total,
			fe.BytesIn, fe.BytesOut, fe.DatagramsIn, fe.DatagramsOut, dropsText(fe.Drops))
		for _, b := range fe.Backends {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t-\n",
				b.Name, b.State, healthWord(b.Health), weightText(b), b.Active, b.Total,
				b.BytesIn, b.BytesOut, b.DatagramsIn, b.DatagramsOut, sum(b.ConnectFailures), b.ForeignDrops)
		}
	}
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

// weightText shows the effective weight beside the configured one only
// while they differ, as during slow start.
func weightText(b stats.BackendStats) string {
	if b.EffectiveWeight == b.Weight {
		return strconv.Itoa(b.Weight)
	}
	return fmt.Sprintf("%d (%d)", b.Weight, b.EffectiveWeight)
}

func millis(s float64) string { return strconv.FormatFloat(s*1000, 'f', 2, 64) + "ms" }
