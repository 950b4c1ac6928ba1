package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary text to the decoder, the line index and
// validation: none may panic, and a failure must be a well-formed *Error.
func FuzzLoad(f *testing.F) {
	if example, err := os.ReadFile(examplePath); err == nil {
		f.Add(example)
	}
	f.Add([]byte(richTOML))
	for _, tc := range badConfigs {
		f.Add([]byte(tc.toml))
	}
	for _, tc := range adminBadConfigs {
		f.Add([]byte(tc.toml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := strings.Count(string(data), "\n") + 1
		for path, line := range indexLines(string(data)).lines {
			if line < 1 || line > lines {
				t.Fatalf("line index puts %q on line %d of %d", path, line, lines)
			}
		}
		cfg, err := Parse(data, "fuzz.toml")
		if err == nil {
			if cfg == nil || len(cfg.Frontends) == 0 {
				t.Fatalf("Parse returned %v with no error", cfg)
			}
			return
		}
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
			t.Fatalf("error %v is not an *Error with problems", err)
		}
		for _, p := range cerr.Problems {
			if p.Line < 0 || p.Line > lines || p.Msg == "" {
				t.Fatalf("malformed problem %+v in a %d-line input", p, lines)
			}
		}
	})
}
