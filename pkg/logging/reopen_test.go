package logging

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestOpenFileRefused: a log file that cannot be created is an error
// naming it.
func TestOpenFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "conn.log")
	if f, err := OpenFile(path); f != nil || err == nil || err.Error() != "log file: open "+path+": no such file or directory" {
		t.Fatalf("OpenFile = %v, %v", f, err)
	}
}

// TestFileReopenUnderWrites: writers that run while logrotate renames the
// file and Reopen switches to a new one lose no line and split none: each
// line is in exactly one of the files, whole.
func TestFileReopenUnderWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "conn.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const writers, lines, rotations = 4, 500, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(f, "w%d line %d\n", w, i); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	for r := range rotations {
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
			t.Fatal(err)
		}
		if err := f.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	var all []byte
	files, _ := filepath.Glob(path + "*")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	seen := make(map[string]int)
	for _, line := range strings.Split(strings.TrimSuffix(string(all), "\n"), "\n") {
		seen[line]++
	}
	for w := range writers {
		for i := range lines {
			if n := seen[fmt.Sprintf("w%d line %d", w, i)]; n != 1 {
				t.Fatalf("w%d line %d found %d times across %d files", w, i, n, len(files))
			}
		}
	}
	if len(seen) != writers*lines {
		t.Fatalf("%d distinct lines, want %d", len(seen), writers*lines)
	}
}

// TestOutputWritePassesThrough: what is written to an Output directly
// (an io.Writer user, not a zerolog event) goes out whatever the level.
func TestOutputWritePassesThrough(t *testing.T) {
	var buf bytes.Buffer
	out, err := NewOutput(Options{Level: "error", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := out.Write([]byte(`{"message":"raw"}` + "\n")); err != nil || n != 18 || buf.String() != `{"message":"raw"}`+"\n" {
		t.Fatalf("Write = %d, %v; output %q", n, err, buf.String())
	}
}
