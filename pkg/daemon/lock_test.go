package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
)

// cfgListening is a config whose one TCP frontend listens on addrs.
func cfgListening(t *testing.T, addrs ...string) *config.Config {
	t.Helper()
	cfg, err := config.New().Frontend("f").Listen(addrs...).Backend("127.0.0.1:1", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestLocksConflicts takes the locks of one instance, then asks what a
// second one may have: the same address and its family's wildcard
// conflict, another address of the port, the other family's wildcard and
// port 0 do not. A refused update leaves nothing held.
func TestLocksConflicts(t *testing.T) {
	dir := t.TempDir()
	first, err := newLocks(dir, "first.toml")
	if err != nil {
		t.Fatal(err)
	}
	u, err := first.update(wantLocks(cfgListening(t, "127.0.0.1:7000")))
	if err != nil {
		t.Fatal(err)
	}
	u.commit()
	for _, tc := range []struct {
		addrs    []string
		conflict bool
	}{
		{[]string{"127.0.0.1:7000"}, true},
		{[]string{"0.0.0.0:7000"}, true},
		{[]string{"127.0.0.2:7000", "127.0.0.1:7000"}, true},
		{[]string{"127.0.0.2:7000"}, false},
		{[]string{"[::]:7000"}, false},
		{[]string{"127.0.0.1:7001", "127.0.0.1:0"}, false},
	} {
		second, err := newLocks(dir, "second.toml")
		if err != nil {
			t.Fatal(err)
		}
		u, err := second.update(wantLocks(cfgListening(t, tc.addrs...)))
		switch {
		case tc.conflict && (err == nil || !errors.Is(err, errLocked)):
			t.Errorf("%v: %v, want a conflict", tc.addrs, err)
		case tc.conflict && len(second.held) != 0:
			t.Errorf("%v: a refused update still holds %d locks", tc.addrs, len(second.held))
		case !tc.conflict && err != nil:
			t.Errorf("%v: %v", tc.addrs, err)
		case !tc.conflict:
			u.commit()
		}
		second.releaseAll()
	}
	// The holder stamped its exclusive lock.
	data, _ := os.ReadFile(filepath.Join(dir, "tcp-7000-127.0.0.1.lock"))
	abs, _ := filepath.Abs("first.toml")
	if want := "config " + abs; !strings.Contains(string(data), want) {
		t.Errorf("lock file %q lacks %q", data, want)
	}
	first.releaseAll()
	// Released: another instance may take the address now.
	second, _ := newLocks(dir, "second.toml")
	if _, err := second.update(wantLocks(cfgListening(t, "0.0.0.0:7000"))); err != nil {
		t.Errorf("after release: %v", err)
	}
	second.releaseAll()
}

// TestLocksReload moves an instance from a specific address to its
// wildcard and back, converting the shared wildcard lock in place, and
// undoes a change on abort.
func TestLocksReload(t *testing.T) {
	lk, err := newLocks(t.TempDir(), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer lk.releaseAll()
	u, err := lk.update(wantLocks(cfgListening(t, "127.0.0.1:7000")))
	if err != nil {
		t.Fatal(err)
	}
	u.commit()
	u, err = lk.update(wantLocks(cfgListening(t, "0.0.0.0:7000")))
	if err != nil {
		t.Fatal(err)
	}
	u.abort()
	if h := lk.held["tcp-7000-any4.lock"]; h == nil || h.exclusive || len(lk.held) != 2 {
		t.Fatalf("after abort: %+v", lk.held)
	}
	u, err = lk.update(wantLocks(cfgListening(t, "0.0.0.0:7000")))
	if err != nil {
		t.Fatal(err)
	}
	u.commit()
	if h := lk.held["tcp-7000-any4.lock"]; h == nil || !h.exclusive || len(lk.held) != 1 {
		t.Fatalf("after the move to the wildcard: %+v", lk.held)
	}
}
