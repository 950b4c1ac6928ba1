package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// checkUnderLimit runs `splicer check -c config.toml.example` (this test
// binary as splicer) in a child whose RLIMIT_NOFILE is nofile, soft and
// hard, as a service with LimitNOFILE= would have it; the child cannot
// raise it. It skips the test when this process may not give the child
// that limit.
func checkUnderLimit(t *testing.T, nofile string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `ulimit -n "$1" || exit 99; shift; exec "$@"`, "sh", nofile,
		testBinary(t), "check", "-c", "../../config.toml.example")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 99 {
		t.Skipf("cannot set RLIMIT_NOFILE to %s for a child here (the hard limit is lower): %s", nofile, errOut.String())
	}
	if err != nil {
		t.Fatalf("splicer check under RLIMIT_NOFILE %s: %v\n%s%s", nofile, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// The example config, what `make run` starts, fits a 20000-fd limit (this
// machine's, and systemd's LimitNOFILE= in many units) with room: a new
// user's first check or run prints no warning. Under a limit it does not
// fit, the same check warns, which shows the limit reached the child.
func TestExampleFitsNoFile20000(t *testing.T) {
	out, errOut := checkUnderLimit(t, "20000")
	if errOut != "" || !strings.Contains(out, "config.toml.example: OK: ") {
		t.Errorf("check of the example under RLIMIT_NOFILE 20000:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	_, errOut = checkUnderLimit(t, "4096")
	if !strings.Contains(errOut, "warning: ../../config.toml.example:9: global.max_connections: needs up to ") ||
		!strings.Contains(errOut, "but RLIMIT_NOFILE is 4096 here") {
		t.Errorf("check of the example under RLIMIT_NOFILE 4096: no fd warning on stderr:\n%s", errOut)
	}
}
