package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/daemon"
)

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	file := fs.String("c", "", "config `file` to validate (required)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: splicer check -c FILE\n\nValidates FILE and reads every secret and access file it names (never printing a\n"+
			"secret); prints a summary and exits 0, or prints every problem and exits 1. Warnings (exit 0)\n"+
			"name settings that do nothing or that this host's limits would not let work.\n")
		fs.PrintDefaults()
	}
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	if *file == "" {
		fmt.Fprintln(stderr, "splicer check: -c FILE is required")
		return exitUsage
	}
	// Warnings include what this host would not allow: run check where
	// the daemon runs, with its limits (ExecStartPre= under systemd).
	cfg, err := config.LoadIn(*file, daemon.HostEnvironment())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning: "+w.String())
	}
	// The secrets are read as the daemon reads them; only where they are
	// kept is ever printed.
	problems, unavailable := daemon.CheckSecrets(cfg)
	text := ""
	if len(problems)+len(unavailable) > 0 {
		b, _ := os.ReadFile(*file) // just loaded; without it, lines are left out
		text = string(b)
	}
	for _, err := range unavailable {
		fmt.Fprintf(stderr, "warning: %s (the daemon reads it at start; run check in the daemon's environment, such as ExecStartPre=, to check it)\n",
			locate(cfg.File, text, err))
	}
	if len(problems) > 0 {
		for _, err := range problems {
			fmt.Fprintln(stderr, locate(cfg.File, text, err))
		}
		return exitFail
	}
	printSummary(stdout, cfg)
	return exitOK
}

// locate formats a secret's problem as the config's own problems are:
// "file:line: setting: message", the line being that of the setting in
// text.
func locate(file, text string, err error) string {
	p := config.Problem{File: file, Msg: err.Error()}
	var sp *daemon.SecretProblem
	if errors.As(err, &sp) && sp.Setting != "" {
		p.Line = config.SettingLine(text, sp.Setting)
	}
	return p.String()
}

// printSummary writes a one-screen overview of a valid config.
func printSummary(w io.Writer, cfg *config.Config) {
	backends := 0
	for _, fe := range cfg.Frontends {
		backends += len(fe.Backends)
	}
	fmt.Fprintf(w, "%s: OK: %d frontend(s), %d backend(s), %d worker(s), max %d connections\n\n",
		cfg.File, len(cfg.Frontends), backends, cfg.Global.Workers, cfg.Global.MaxConnections)
	if line := adminSummary(cfg.Admin); line != "" {
		fmt.Fprintln(w, line)
		fmt.Fprintln(w)
	}
	for _, fe := range cfg.Frontends {
		listen := make([]string, len(fe.Listen))
		for j, a := range fe.Listen {
			listen[j] = a.String()
		}
		fmt.Fprintf(w, "frontend %q: %s %s, strategy %s, health check %s%s%s\n",
			fe.Name, fe.Protocol, strings.Join(listen, " "), fe.Strategy, fe.Health.Check, roleNote(fe.Health), passiveNote(fe.Health))
		if p := proxyNote(&fe); p != "" {
			fmt.Fprintf(w, "  PROXY protocol: %s\n", p)
		}
		if d := fe.Discovery; d != nil && d.Type != "" {
			fmt.Fprintf(w, "  backends: the %s records of %q, from %s\n\n", strings.ToUpper(d.Type), d.Name, resolverList(d.DNS))
			continue
		}
		if d := fe.Discovery; d != nil {
			fmt.Fprintf(w, "  backends: the %s of master set %q, from Sentinel %s\n\n", discoveredRole(d), d.Master, addrList(d.Sentinel))
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  BACKEND\tADDRESS\tWEIGHT\tMAXCONN\tROLE")
		for _, b := range fe.Backends {
			role := "primary"
			if b.Backup {
				role = "backup"
			}
			addr := b.Address.String()
			if b.Host != "" {
				addr = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Address.Port()))) + " (resolved from " + resolverList(cfg.DNS) + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", b.Name, addr, b.Weight, limit(b.MaxConnections), role)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
}

// adminSummary says how the admin port is reached and who may use it; ""
// when it is disabled.
func adminSummary(a config.Admin) string {
	var where []string
	if a.Listen != "" {
		tls := ""
		if a.TLSCert != "" {
			tls = " (TLS"
			if a.TLSClientCA != "" {
				tls += ", client certificates " + a.TLSClientAuth
			}
			tls += ")"
		}
		where = append(where, "tcp "+a.Listen+tls)
	}
	if a.Socket != "" {
		where = append(where, fmt.Sprintf("socket %s (mode %04o, %d socket role(s))", a.Socket, uint32(a.SocketMode), len(a.SocketRoles)))
	}
	if len(where) == 0 {
		return ""
	}
	who := "no users_file: read-only"
	if a.UsersFile != "" {
		who = "users from " + a.UsersFile
	}
	audit := "no audit log"
	if a.AuditLog != "" {
		audit = "audit log " + a.AuditLog + ", key from " + a.AuditKey.String()
	}
	return "admin: " + strings.Join(where, ", ") + "; " + who + "; " + audit
}

// limit shows a cap, with 0 meaning none.
func limit(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// passiveNote says how passive detection works for h: the whole of health
// checking when the check is "none", nothing to add otherwise.
func passiveNote(h config.Health) string {
	switch {
	case h.Check != config.CheckNone:
		return ""
	case h.PassiveFall == 0:
		return " (no passive detection)"
	}
	return fmt.Sprintf(" (passive only: out after %d failures for %s)", h.PassiveFall, h.DownInterval)
}

// roleNote says which database role the health check requires, if any.
func roleNote(h config.Health) string {
	switch {
	case h.Role == "":
		return ""
	case h.MaxLag > 0:
		return fmt.Sprintf(" (role %s, max_lag %s)", h.Role, h.MaxLag)
	case h.MaxLagBytes > 0:
		return fmt.Sprintf(" (role %s, max_lag_bytes %d)", h.Role, h.MaxLagBytes)
	}
	return " (role " + h.Role + ")"
}

// discoveredRole names what Sentinel discovery takes as backends.
func discoveredRole(d *config.Discovery) string {
	if d.Role == config.RoleReplica {
		return "replicas"
	}
	return "master"
}

// resolverList names the resolvers DNS settings ask.
func resolverList(d config.DNS) string {
	if len(d.Resolvers) == 0 {
		return "the resolvers of /etc/resolv.conf"
	}
	return addrList(d.Resolvers)
}

func addrList(addrs []netip.AddrPort) string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return strings.Join(out, " ")
}

// proxyNote says what a frontend does with the PROXY protocol, "" when
// nothing: from whom it reads headers, and which version its backends get.
func proxyNote(fe *config.Frontend) string {
	var parts []string
	if fe.AcceptProxy {
		from := make([]string, len(fe.AcceptProxyFrom))
		for i, p := range fe.AcceptProxyFrom {
			from[i] = p.String()
		}
		others := "others refused"
		if fe.AcceptProxyOptional {
			others = "others served as they are"
		}
		parts = append(parts, fmt.Sprintf("read from %s (%s)", strings.Join(from, " "), others))
	}
	sent := map[string]int{}
	for _, b := range fe.Backends {
		if v := b.SendProxy; v != "" && v != config.ProxyNone {
			sent[v]++
		}
	}
	switch {
	case fe.Discovery != nil && fe.SendProxy != config.ProxyNone:
		parts = append(parts, "sent as "+fe.SendProxy)
	case len(sent) == 1 && sent[fe.SendProxy] == len(fe.Backends):
		parts = append(parts, "sent as "+fe.SendProxy)
	case len(sent) > 0:
		for _, v := range []string{config.ProxyV1, config.ProxyV2} {
			if sent[v] > 0 {
				parts = append(parts, fmt.Sprintf("sent as %s to %d of %d backends", v, sent[v], len(fe.Backends)))
			}
		}
	}
	return strings.Join(parts, "; ")
}
