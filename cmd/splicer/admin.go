package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/splicerlb/splicer/pkg/admin"
)

// clientFlagsHelp describes the flags of every command that calls the
// daemon.
var clientFlagsHelp = fmt.Sprintf(`
Flags may come before, between or after the arguments:
-admin ADDR       admin address of the daemon: host:port, an http(s) URL, or
                  unix:PATH of the admin socket (default $%s, else %s)
-token-file FILE  file holding the bearer token (default $%s); not needed
                  on the admin socket when socket_roles maps your uid
-cacert FILE      PEM CA to verify an https admin port with
`, admin.AdminEnv, admin.DefaultAddr, admin.TokenFileEnv)

// adminUsage is the help of each command of this file.
var adminUsage = map[string]string{
	"stats": `splicer stats [-json] [-admin ADDR] [-token-file FILE] [-cacert FILE]

Prints each frontend and its backends: state, health and how long since it
last changed, the last check, weight, connections (now, peak, cap), the
queue, rates per second (now/peak over the daemon's 10-minute history),
connect times and the exact counters. -json prints GET /api/v1/stats.
` + clientFlagsHelp,
	"top": `splicer top [-interval D] [-admin ADDR] [-token-file FILE] [-cacert FILE]

A live view of the frontends and backends, refreshed every -interval
(default 2s). Keys: up/down (or k/j) select a backend; d drains it and m
puts it in maintenance, each after y to confirm; r makes it ready; q quits.
The keys need the operator role, as splicer backend does.
` + clientFlagsHelp,
	"conns": `splicer conns [-frontend F] [-limit N] [-json] [-admin ADDR] [-token-file FILE] [-cacert FILE]
splicer conns kill ID... [-admin ADDR] [-token-file FILE] [-cacert FILE]

Lists the live connections (UDP: flows), oldest first: at most -limit
(default 100; 0 lists all). kill closes each connection named by its ID,
resetting both peers; it needs the operator role.
` + clientFlagsHelp,
	"backend": "splicer backend [-admin ADDR] [-token-file FILE] drain|ready|maint FRONTEND BACKEND\n" +
		"splicer backend [-admin ADDR] [-token-file FILE] weight FRONTEND BACKEND N\n" + clientFlagsHelp,
	"reload":  "splicer reload [-admin ADDR] [-token-file FILE] [-cacert FILE]\n" + clientFlagsHelp,
	"upgrade": "splicer upgrade [-admin ADDR] [-token-file FILE] [-cacert FILE]\n" + clientFlagsHelp,
	"user": `splicer user add [-file USERS | -c CONFIG] [-cert-only] NAME ROLE
splicer user rotate [-file USERS | -c CONFIG] NAME
splicer user remove [-file USERS | -c CONFIG] NAME
splicer user list [-file USERS | -c CONFIG]

Edits the admin users file (-file, or admin.users_file of the config given
with -c). ROLE is viewer, operator or admin, optionally scoped to frontends:
operator:pg,redis. add and rotate print the user's new token on stdout, once:
the file keeps only its SHA-256. The daemon reads the file again on SIGHUP.
`,
	"audit": `splicer audit verify [-c CONFIG | -key-file PATH]... [-checkpoint SEQ:HASH | -checkpoint-file FILE] [FILE...]
splicer audit checkpoint [-admin ADDR] [-token-file FILE] [-cacert FILE]

verify checks the audit log's HMAC chain across FILEs, oldest first (with -c
and no FILE: admin.audit_log and its rotated files), and names the first bad
sequence number. -key-file may be repeated for a log whose key was changed.
With a checkpoint (the seq and hash saved earlier from "splicer audit
checkpoint"), a log cut short is detected too. checkpoint prints the running
daemon's SEQ:HASH.
` + clientFlagsHelp,
}

// cmdAdmin runs a command implemented in pkg/admin (stats, top, conns,
// backend, reload, upgrade, user, audit) and maps its error to an exit code: usage errors exit 2,
// everything else (daemon unreachable, refused change, broken chain) exits
// 1.
func cmdAdmin(ctx context.Context, name string, run func(context.Context, []string, io.Writer) error,
	args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprintf(stdout, "Usage: %s", adminUsage[name])
			return exitOK
		}
	}
	err := run(ctx, args, stdout)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, admin.ErrUsage):
		fmt.Fprintf(stderr, "splicer %s: %v\n", name, err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "splicer %s: %v\n", name, err)
	return exitFail
}
