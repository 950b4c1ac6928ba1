package logging

import (
	"bytes"
	"strings"
	"testing"
)

// A component logger made before a change follows the new level and
// format at once, as a reload needs.
func TestOutputChangesLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	out, err := NewOutput(Options{Level: "warn", Format: "json", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l := Component(out.Logger(), "l4")
	l.Info().Msg("below warn")
	l.Warn().Msg("json warn")
	if err := out.Set("debug", "console"); err != nil {
		t.Fatal(err)
	}
	l.Debug().Msg("console debug")
	if err := out.Set("loud", "json"); err == nil {
		t.Fatal("a bad level was accepted")
	}
	if err := out.Set("info", "xml"); err == nil {
		t.Fatal("a bad format was accepted")
	}
	l.Debug().Msg("still console debug") // the failed Sets changed nothing
	got := buf.String()
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || strings.Contains(got, "below warn") ||
		!strings.HasPrefix(lines[0], `{"level":"warn","component":"l4"`) ||
		!strings.Contains(lines[1], "DBG") || !strings.Contains(lines[1], "console debug") ||
		!strings.Contains(lines[2], "DBG") {
		t.Errorf("output:\n%s", got)
	}
}

// An event without a level (zerolog's Log) is written whatever the level,
// in the current format; NewOutput refuses what Set refuses.
func TestOutputLevellessAndBadOptions(t *testing.T) {
	var buf bytes.Buffer
	out, err := NewOutput(Options{Level: "error", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l := out.Logger()
	l.Log().Msg("no level")
	l.Warn().Msg("below error")
	if got := buf.String(); !strings.Contains(got, `"message":"no level"`) || strings.Contains(got, "below error") || strings.Count(got, "\n") != 1 {
		t.Errorf("output: %q", got)
	}
	if _, err := NewOutput(Options{Level: "loud"}); err == nil || !strings.Contains(err.Error(), `log level "loud"`) {
		t.Errorf("NewOutput with a bad level = %v", err)
	}
	if _, err := NewOutput(Options{Format: "xml"}); err == nil || !strings.Contains(err.Error(), `log format "xml"`) {
		t.Errorf("NewOutput with a bad format = %v", err)
	}
}
