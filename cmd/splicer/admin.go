package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/splicerlb/splicer/pkg/admin"
)

// adminUsage is the synopsis of each admin client command.
var adminUsage = map[string]string{
	"stats":   "splicer stats [-admin ADDR]",
	"backend": "splicer backend [-admin ADDR] drain|ready|maint FRONTEND BACKEND | weight FRONTEND BACKEND N",
	"reload":  "splicer reload [-admin ADDR]",
	"upgrade": "splicer upgrade [-admin ADDR]",
}

// cmdAdmin runs an admin-API client command (stats, backend, reload,
// upgrade) and maps its
// error to an exit code: usage errors exit 2, everything else (daemon
// unreachable, refused change) exits 1.
func cmdAdmin(ctx context.Context, name string, run func(context.Context, []string, io.Writer) error,
	args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprintf(stdout, "Usage: %s\n\n-admin ADDR  admin address of the daemon (default %s)\n", adminUsage[name], admin.DefaultAddr)
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
