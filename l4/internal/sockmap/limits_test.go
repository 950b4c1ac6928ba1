package sockmap

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestOpenAtFileLimit: at the open-file limit, each step of Open that
// needs a descriptor fails with EMFILE, says which step it was, and
// closes what the steps before it opened. The program's load fails
// before the verifier runs, so its error carries no log.
func TestOpenAtFileLimit(t *testing.T) {
	openMap(t) // skips without the privileges
	for above, want := range []string{
		"sockmap: creating the peer map: too many open files",
		"sockmap: creating the verdict map: too many open files",
		"sockmap: loading the sk_skb verdict program: too many open files",
	} {
		var m *Map
		var err error
		free := testutil.AtFileLimit(t, above, func() { m, err = Open(4) })
		if err == nil {
			m.Close()
			t.Fatalf("Open with %d descriptors free succeeded", above)
		}
		if !strings.HasPrefix(err.Error(), want) || !errors.Is(err, unix.EMFILE) {
			t.Errorf("Open with %d descriptors free = %v, want %q", above, err, want)
		}
		if after := testutil.LowestFreeFD(t); after != free {
			t.Errorf("Open with %d descriptors free left descriptors open (lowest free %d, was %d)", above, after, free)
		}
	}
}

// TestAddRefusesNonSockets: Add of a descriptor that is not a socket fails
// on its cookie, whichever side it is, and changes nothing.
func TestAddRefusesNonSockets(t *testing.T) {
	m := openMap(t)
	c := newChain(t)
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	for _, pair := range [][2]int{{fds[0], c.a}, {c.a, fds[0]}} {
		if _, err := m.Add(pair[0], pair[1]); err == nil || err.Error() != "sockmap: SO_COOKIE: socket operation on non-socket" {
			t.Errorf("Add(%d, %d) = %v, want SO_COOKIE: ENOTSOCK", pair[0], pair[1], err)
		}
	}
	p, err := m.Add(c.a, c.b)
	if err != nil {
		t.Fatalf("the pair after the refusals: %v", err)
	}
	if err := m.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveAfterClose: Remove on a closed Map reports the failed deletes
// rather than pretending the pair is gone.
func TestRemoveAfterClose(t *testing.T) {
	m := openMap(t)
	c := newChain(t)
	p, err := m.Add(c.a, c.b)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := m.Remove(p); !errors.Is(err, unix.EBADF) {
		t.Fatalf("Remove after Close = %v, want EBADF", err)
	}
}

// TestLoadErrorWithoutLog: a refusal without a verifier log (the EPERM an
// unprivileged process gets, which TestOpenUnprivileged sees in a child
// process) names the errno alone and wraps it.
func TestLoadErrorWithoutLog(t *testing.T) {
	err := error(&LoadError{Errno: unix.EPERM})
	if err.Error() != "loading the sk_skb verdict program: operation not permitted" || !errors.Is(err, unix.EPERM) {
		t.Fatalf("LoadError = %q", err)
	}
}
