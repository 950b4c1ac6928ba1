package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewJSONWithComponent(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Level: "warn", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	c := Component(l, "l4")
	c.Info().Msg("dropped: below level")
	c.Warn().Int("n", 3).Msg("kept")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1: %q", len(lines), buf.String())
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	for k, want := range map[string]any{"level": "warn", "component": "l4", "message": "kept", "n": 3.0} {
		if ev[k] != want {
			t.Errorf("%s = %v, want %v", k, ev[k], want)
		}
	}
	if _, ok := ev["time"]; !ok {
		t.Error("no time field")
	}
}

func TestNewConsole(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Format: FormatConsole, Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Str("frontend", "pg").Msg("listening")
	out := buf.String()
	if !strings.Contains(out, "listening") || !strings.Contains(out, "frontend=") || strings.HasPrefix(out, "{") {
		t.Fatalf("console output %q does not look human", out)
	}
}

func TestNewRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Level: "verbose"}, `log level "verbose": must be one of debug, info, warn, error`},
		{Options{Format: "xml"}, `log format "xml": must be "json" or "console"`},
	} {
		if _, err := New(tc.o); err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) error = %v, want %q", tc.o, err, tc.want)
		}
	}
}
