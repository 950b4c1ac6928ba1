package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The daemon's own files: the state file and the runtime directory. Their
// defaults follow what systemd gives a service with StateDirectory= and
// RuntimeDirectory= ($STATE_DIRECTORY, $RUNTIME_DIRECTORY), so the shipped
// unit needs no path in the config.

// stateFileName is the state file's name in $STATE_DIRECTORY.
const stateFileName = "state.json"

// defaultStateFile is $STATE_DIRECTORY/state.json when systemd set
// STATE_DIRECTORY, else "": no state file.
func defaultStateFile() string {
	if dir := firstPath(os.Getenv("STATE_DIRECTORY")); dir != "" {
		return filepath.Join(dir, stateFileName)
	}
	return ""
}

// defaultRuntimeDir is $RUNTIME_DIRECTORY when systemd set it; else
// /run/splicer for root; else, for a user who cannot write /run,
// $XDG_RUNTIME_DIR/splicer or, failing that, /tmp/splicer-UID. Two
// instances of one user agree on it, which is all the listener locks need:
// the kernel lets only sockets of the same user share a port.
func defaultRuntimeDir() string {
	if dir := firstPath(os.Getenv("RUNTIME_DIRECTORY")); dir != "" {
		return dir
	}
	if os.Geteuid() == 0 {
		return "/run/splicer"
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "splicer")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("splicer-%d", os.Geteuid()))
}

// firstPath is the first of systemd's colon-separated directory list.
func firstPath(list string) string {
	first, _, _ := strings.Cut(list, ":")
	return first
}

func resolveDaemonFiles(g *Global, r *rawGlobal, sc scope) {
	g.StateFile = get(sc, "state_file", r.StateFile, defaultStateFile())
	g.RuntimeDir = get(sc, "runtime_dir", r.RuntimeDir, defaultRuntimeDir())
}

func validateDaemonFiles(g Global, sc scope) {
	if g.StateFile != "" && !filepath.IsAbs(g.StateFile) {
		sc.addf("state_file", `must be an absolute path, or "" for none; got %q`, g.StateFile)
	}
	if !filepath.IsAbs(g.RuntimeDir) {
		sc.addf("runtime_dir", "must be an absolute path; got %q", g.RuntimeDir)
	}
}
