package config

import (
	"strings"
	"testing"
	"time"
)

// The connection log keys: every bad value refused with its line, and a
// key that could not change what is logged refused rather than ignored.
func TestConnectionLogKeys(t *testing.T) {
	bad := []struct {
		name, toml, want string
	}{
		{"unknown choice", "log_connections = \"some\"\n",
			`config.toml:5: frontend "demo": log_connections: must be one of all, errors, off; got "some"`},
		{"sample zero", "log_connections = \"all\"\nlog_sample = 0\n",
			`config.toml:6: frontend "demo": log_sample: must be above 0 and at most 1 (the fraction of clean connections logged), got 0`},
		{"sample above one", "log_connections = \"all\"\nlog_sample = 1.5\n",
			`config.toml:6: frontend "demo": log_sample: must be above 0 and at most 1 (the fraction of clean connections logged), got 1.5`},
		{"sample a string", "log_connections = \"all\"\nlog_sample = \"1%\"\n",
			`config.toml:6: frontend "demo": log_sample: must be a number, got a string`},
		{"sample without all", "log_sample = 0.1\n",
			`config.toml:5: frontend "demo": log_sample: only applies with log_connections = "all": error lines are never sampled`},
		{"slow with off", "log_connections = \"off\"\nlog_slow = \"1s\"\n",
			`config.toml:6: frontend "demo": log_slow: does not apply with log_connections = "off"`},
		{"slow negative", "log_slow = \"-1s\"\n",
			`config.toml:5: frontend "demo": log_slow: must not be negative, got -1s`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			// The keys go into the demo frontend's table, from line 5.
			text := strings.Replace(demoFrontend, "backend = ", tc.toml+"backend = ", 1)
			_, err := Parse([]byte(text), "config.toml")
			if err == nil || err.Error() != tc.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ toml, want string }{
		{"[log]\nconnections_file = \"conn.log\"\n", `config.toml:2: log.connections_file: must be an absolute path, or "" for the daemon's log; got "conn.log"`},
		{"[log]\nconnections_buffer = 8\n", `config.toml:2: log.connections_buffer: must be between 16 and 1048576, got 8`},
	} {
		if _, err := Parse([]byte(tc.toml+demoFrontend), "config.toml"); err == nil || err.Error() != tc.want {
			t.Errorf("error:\n%v\nwant:\n%s", err, tc.want)
		}
	}

	cfg, err := Parse([]byte("[log]\nconnections_file = \"/var/log/splicer/connections.log\"\nconnections_buffer = 4096\n"+
		strings.Replace(demoFrontend, "backend = ", "log_connections = \"all\"\nlog_sample = 1\nlog_slow = \"250ms\"\nbackend = ", 1)), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Frontends[0]
	if cfg.Log.ConnectionsFile != "/var/log/splicer/connections.log" || cfg.Log.ConnectionsBuffer != 4096 ||
		f.LogConnections != LogAll || f.LogSample != 1 || f.LogSlow != 250*time.Millisecond {
		t.Errorf("log %+v, frontend log %q %v %v", cfg.Log, f.LogConnections, f.LogSample, f.LogSlow)
	}
}

func TestPeekLogFormat(t *testing.T) {
	dir := t.TempDir()
	for text, want := range map[string]string{
		"[log]\nformat = \"console\"\n[[frontend]]\nwieght = 2\n": "console",
		"[log]\nformat = \"json\"\n":                              "json",
		"[log]\nformat = \"xml\"\n":                               "",
		"[log]\nformat = 3\n":                                     "",
		"[log\n":                                                  "",
	} {
		path := writeFile(t, dir+"/c.toml", text, 0o600)
		if got := PeekLogFormat(path); got != want {
			t.Errorf("%q: %q, want %q", text, got, want)
		}
	}
	if got := PeekLogFormat(dir + "/missing.toml"); got != "" {
		t.Errorf("missing file: %q", got)
	}
}
