package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeAtomic replaces the file whole or not at all: on every failure the
// old content stays and no temporary file is left beside it.
func TestWriteAtomicFailuresKeepTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := writeAtomic(path, map[string]int{"weight": 3}); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(old); got != "{\n  \"weight\": 3\n}\n" {
		t.Fatalf("written %q", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, %v; want 0640", fi.Mode(), err)
	}

	// A value JSON cannot encode.
	if err := writeAtomic(path, map[string]any{"c": make(chan int)}); err == nil {
		t.Error("writeAtomic of a channel succeeded")
	}
	// A directory that does not exist.
	if err := writeAtomic(filepath.Join(dir, "missing", "state.json"), 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("writeAtomic into a missing directory = %v; want ErrNotExist", err)
	}
	// A directory where the file should be: the rename fails.
	sub := filepath.Join(dir, "taken")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	var linkErr *os.LinkError
	if err := writeAtomic(sub, 1); !errors.As(err, &linkErr) || linkErr.Op != "rename" {
		t.Errorf("writeAtomic onto a directory = %v; want the rename's error", err)
	}

	if now, err := os.ReadFile(path); err != nil || string(now) != string(old) {
		t.Errorf("after the failures the file holds %q, %v; want the old %q", now, err, old)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
