package config

import (
	"strings"
	"testing"
)

const oneFrontend = `
[[frontend]]
name = "demo"
listen = "127.0.0.1:7000"
[[frontend.backend]]
address = "127.0.0.1:7001"
`

// Under systemd, StateDirectory= and RuntimeDirectory= give the defaults.
func TestDaemonFilesFromSystemd(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/splicer:/var/lib/other")
	t.Setenv("RUNTIME_DIRECTORY", "/run/splicer-test")
	cfg, err := Parse([]byte(oneFrontend), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Global.StateFile != "/var/lib/splicer/state.json" || cfg.Global.RuntimeDir != "/run/splicer-test" {
		t.Errorf("state file %q, runtime dir %q", cfg.Global.StateFile, cfg.Global.RuntimeDir)
	}
	// An explicit "" keeps no state file, whatever systemd says.
	cfg, err = Parse([]byte("[global]\nstate_file = \"\"\n"+oneFrontend), "c.toml")
	if err != nil || cfg.Global.StateFile != "" {
		t.Errorf("state_file = \"\": %q, %v", cfg.Global.StateFile, err)
	}
}

func TestDaemonFilesMustBeAbsolute(t *testing.T) {
	_, err := Parse([]byte("[global]\nstate_file = \"state.json\"\nruntime_dir = \"run\"\n"+oneFrontend), "c.toml")
	want := "c.toml:2: global.state_file: must be an absolute path, or \"\" for none; got \"state.json\"\n" +
		"c.toml:3: global.runtime_dir: must be an absolute path; got \"run\""
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
	if cfg, err := New().StateFile("/tmp/s.json").RuntimeDir("/tmp/r").Frontend("f").Listen("127.0.0.1:0").
		Backend("127.0.0.1:1", 1).Build(); err != nil || cfg.Global.StateFile != "/tmp/s.json" || !strings.HasPrefix(cfg.Global.RuntimeDir, "/tmp/r") {
		t.Errorf("builder: %+v, %v", cfg, err)
	}
}
