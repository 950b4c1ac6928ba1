package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Install hints name the Debian/Ubuntu packages; the harness never installs
// anything itself.
const (
	hintIperf3  = "install it with: apt-get install iperf3"
	hintHAProxy = "install it with: apt-get install haproxy"
	hintNginx   = "install it with: apt-get install nginx-light libnginx-mod-stream"
	hintStream  = "nginx lacks the stream module; install it with: apt-get install libnginx-mod-stream"
	hintSplicer = "build it with: make build (or pass -splicer PATH)"
)

// streamModuleFile is the dynamic stream module's file name.
const streamModuleFile = "ngx_stream_module.so"

// errNoIperf3 stops a run with the TCP tests: without iperf3 there is no
// throughput test.
var errNoIperf3 = errors.New("iperf3 not found on PATH; " + hintIperf3)

// tools are the external programs the harness drives. A path is "" when the
// program is unusable, and missing then says why and how to get it.
type tools struct {
	self    string // this binary, re-executed for the backends and the io.Copy proxy
	iperf3  string // "" when the TCP tests are not run
	haproxy string
	nginx   string
	// nginxStream is the stream module to load_module, "" when nginx has it
	// built in.
	nginxStream string
	splicer     string
	missing     map[string]string // target name -> reason and install hint
	versions    map[string]string // program -> version line
}

// findTools locates every program, iperf3 only when needIperf3 (the TCP
// tests run). Only a missing iperf3 is an error; any other missing program
// only disables its column.
func findTools(splicerPath string, needIperf3 bool) (*tools, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary to re-execute: %w", err)
	}
	t := &tools{self: self, missing: map[string]string{}, versions: map[string]string{}}
	if needIperf3 {
		if t.iperf3, err = exec.LookPath("iperf3"); err != nil {
			return nil, errNoIperf3
		}
		t.versions["iperf3"] = firstLine(output(t.iperf3, "--version"))
	}
	if t.haproxy, err = exec.LookPath("haproxy"); err != nil {
		t.missing[targetHAProxy] = "haproxy not found on PATH; " + hintHAProxy
	} else {
		t.versions["haproxy"] = firstLine(output(t.haproxy, "-v"))
	}
	t.findNginx()
	t.findSplicer(splicerPath)
	return t, nil
}

// findNginx finds nginx and its stream module, from the configure arguments
// nginx -V prints.
func (t *tools) findNginx() {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.missing[targetNginx] = "nginx not found on PATH; " + hintNginx
		return
	}
	v := output(nginx, "-V")
	builtIn, dynamic, modulesPath := streamSupport(v)
	switch {
	case builtIn:
		t.nginx = nginx
	case dynamic:
		dirs := []string{modulesPath, "/usr/lib/nginx/modules", "/usr/lib64/nginx/modules"}
		for _, dir := range dirs {
			p := filepath.Join(dir, streamModuleFile)
			if dir != "" && fileExists(p) {
				t.nginx, t.nginxStream = nginx, p
				break
			}
		}
	}
	if t.nginx == "" {
		t.missing[targetNginx] = hintStream
		return
	}
	t.versions["nginx"] = firstLine(v)
}

// findSplicer checks the splicer binary given with -splicer.
func (t *tools) findSplicer(path string) {
	if path == "" || !fileExists(path) {
		t.missing[targetSplicer] = fmt.Sprintf("splicer binary %q not found; %s", path, hintSplicer)
		return
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.missing[targetSplicer] = fmt.Sprintf("splicer binary %q: %v", path, err)
		return
	}
	t.splicer = abs
	t.versions["splicer"] = firstLine(output(abs, "version"))
}

// streamSupport reads nginx -V output: whether the stream module is built
// in, whether it is a dynamic module, and the configured modules path.
func streamSupport(v string) (builtIn, dynamic bool, modulesPath string) {
	for _, arg := range strings.Fields(v) {
		switch {
		case arg == "--with-stream":
			builtIn = true
		case arg == "--with-stream=dynamic":
			dynamic = true
		case strings.HasPrefix(arg, "--modules-path="):
			modulesPath = strings.TrimPrefix(arg, "--modules-path=")
		}
	}
	return builtIn, dynamic, modulesPath
}

// output runs a program for its version text, which some print on stderr
// (nginx) and some on stdout; it returns "" when the program fails.
func output(path string, args ...string) string {
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// firstLine returns the first line of s, trimmed.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// fileExists reports whether path names an existing regular file.
func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
