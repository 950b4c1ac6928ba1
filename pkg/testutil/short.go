package testutil

import "testing"

// SkipShort skips the test under `go test -short` (make test-unit), which
// runs no real server: what is the program the test would start, as
// "PostgreSQL". The helpers that start servers call it first.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: this test starts a real %s (make test or go test without -short runs it)", what)
	}
}
