package config

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestReadSecretFileRefusesFIFO names a FIFO as a secret file: it is
// refused as not a regular file at once, where a plain open(2) would wait
// for a writer and hang `splicer check` and the daemon's start.
func TestReadSecretFileRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := (Secret{File: path}).Read()
		done <- err
	}()
	select {
	case err := <-done:
		if want := `file "` + path + `": not a regular file (p---------)`; err == nil || err.Error() != want {
			t.Errorf("Read of a FIFO: %v, want %s", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read of a FIFO still blocked after 10 s")
	}
}

// TestSettingLine places settings found after loading, as `splicer check`
// does for a secret it cannot read.
func TestSettingLine(t *testing.T) {
	text := "[admin]\nlisten = \"127.0.0.1:9090\"\nusers_file = \"/etc/u\"\n\n[[frontend]]\nname = \"a\"\n[[frontend]]\nname = \"b\"\n" +
		"  [frontend.health]\n  check = \"redis\"\n  password = { file = \"/p\" }\n"
	for path, want := range map[string]int{
		"admin.users_file":            3,
		"admin.audit_key":             1, // not set: its table
		"frontend[1].health.password": 11,
		"frontend[0].health.password": 5, // no [frontend.health] in the first: the frontend
		"log.level":                   0,
	} {
		if got := SettingLine(text, path); got != want {
			t.Errorf("SettingLine(%s) = %d, want %d", path, got, want)
		}
	}
}
