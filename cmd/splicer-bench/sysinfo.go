package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// fdLimit is the hard RLIMIT_NOFILE: every proxy raises its soft limit up
// to it (Go does so at startup; HAProxy and nginx's worker_rlimit_nofile
// too), so it is the fd budget each proxy process really has.
func fdLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	return int(min(rl.Max, 1<<30)), nil
}

// writeHeader writes what a results file needs to be read later: when and
// where it was measured, with which versions, and the command line.
func writeHeader(w io.Writer, tl *tools, fds int, args []string) {
	fmt.Fprintln(w, "# splicer-bench results")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "- kernel: Linux %s\n", readTrimmed("/proc/sys/kernel/osrelease"))
	fmt.Fprintf(w, "- CPU: %s, %d cores\n", cpuModel(), runtime.NumCPU())
	fmt.Fprintf(w, "- fd limit (RLIMIT_NOFILE): %d\n", fds)
	for _, p := range []string{"splicer", "haproxy", "nginx", "iperf3"} {
		if v, ok := tl.versions[p]; ok {
			fmt.Fprintf(w, "- %s: %s\n", p, v)
		}
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			quoted[i] = strconv.Quote(a)
		}
	}
	fmt.Fprintf(w, "- command: `splicer-bench %s`\n\n", strings.Join(quoted, " "))
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// readTrimmed returns a small file's content, or "unknown".
func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
