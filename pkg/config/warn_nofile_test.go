package config

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// A config without a [global] table leaves max_connections at its
// default, on no line of the file: the fd warning says so and where to
// set it, rather than printing the key with no line as if it were in the
// file.
func TestWarningDefaultMaxConnectionsNoGlobal(t *testing.T) {
	cfg, err := parse([]byte(frontendTOML+"[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n"), "t.toml",
		&Environment{NoFile: 20000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.String())
	}
	// Workers default to one per CPU.
	cpus := runtime.NumCPU()
	want := `t.toml: global.max_connections (the default, 10000: the file has no [global] table): needs up to ` +
		strconv.Itoa(22212+64*cpus) + ` file descriptors (2 × 10000 TCP connections + 2 × 1024 pipes + 64 × ` +
		strconv.Itoa(cpus) + ` workers + 64 admin connections + 100 spare) but RLIMIT_NOFILE is 20000 here: beyond it, accepting pauses (EMFILE) and clients wait. Raise the ` +
		`limit (LimitNOFILE= under systemd) or lower this in a [global] table`
	if strings.Join(got, "\n") != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}
