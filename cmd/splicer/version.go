package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
)

// Set by the Makefile with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	fmt.Fprintf(stdout, "splicer %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
