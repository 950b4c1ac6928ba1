package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every timestamp is RFC 3339 with milliseconds, in UTC; the console form
// off a terminal carries no colour codes.
func TestTimestampsAndColours(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Msg("hello")
	var ev map[string]any
	if err := json.Unmarshal(buf.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ts, _ := ev["time"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("time %q is not RFC 3339 with milliseconds in UTC", ts)
	}
	buf.Reset()
	out, err := NewOutput(Options{Format: FormatConsole, Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l = out.Logger()
	l.Warn().Str("frontend", "pg").Msg("careful")
	line := buf.String()
	if strings.Contains(line, "\x1b[") || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WRN careful frontend=pg\n$`).MatchString(line) {
		t.Errorf("console line %q", line)
	}
}

// A File reopened after its rename writes on to a new file at the path;
// nothing written before or after is lost.
func TestFileReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conn.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("one\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("two\n")) // still the renamed file, as logrotate expects
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("three\n"))
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\ntwo\n" || string(cur) != "three\n" {
		t.Errorf("renamed file %q, new file %q", old, cur)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != FileMode {
		t.Errorf("new file mode %v, %v; want %v", st.Mode().Perm(), err, os.FileMode(FileMode))
	}
	// A path that cannot be opened (a directory took its place) keeps
	// the file in use.
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err == nil {
		t.Error("Reopen onto a directory succeeded")
	}
	f.Write([]byte("four\n"))
	if b, _ := os.ReadFile(path + ".2"); string(b) != "three\nfour\n" {
		t.Errorf("after a failed reopen: %q", b)
	}
}
