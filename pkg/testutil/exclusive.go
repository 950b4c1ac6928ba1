package testutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Exclusive holds, until t ends, a lock that every test process on the
// machine asking for the same name shares: for a test that keeps the CPU
// busy for a long while (a flood of connections) and a test whose timing a
// busy CPU breaks (a real database failover), which `go test ./...` would
// otherwise run side by side in two packages. It waits for the lock at
// most wait, then goes on without it and says so.
func Exclusive(t testing.TB, name string, wait time.Duration) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "splicer-test-"+name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Logf("exclusive %s: %v; going on without it", name, err)
		return
	}
	deadline := time.Now().Add(wait)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Logf("exclusive %s: still held after %v (%v); going on without it", name, wait, err)
			return
		}
		time.Sleep(100 * time.Millisecond) // another test process holds it
	}
	// Closing the file releases the lock.
	t.Cleanup(func() { f.Close() })
}
