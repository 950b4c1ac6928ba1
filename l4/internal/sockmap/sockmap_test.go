package sockmap

import (
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/testutil"
)

func TestOpenRefusesNoPairs(t *testing.T) {
	if _, err := Open(0); err == nil {
		t.Fatal("Open(0) succeeded")
	}
}

// A program the verifier refuses comes back as a *LoadError with the
// verifier's own account of why.
func TestVerifierLogOnRefusal(t *testing.T) {
	openMap(t) // skips without the privileges
	// exit with r0 never set: the verifier refuses to return garbage.
	_, err := loadProgram([]insn{exit()}, "splicer_bad")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err %v (%T), want a *LoadError", err, err)
	}
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINVAL) {
		t.Errorf("errno %v, want EACCES or EINVAL", le.Errno)
	}
	if !strings.Contains(le.Log, "R0 !read_ok") {
		t.Errorf("verifier log %q does not say r0 was never set", le.Log)
	}
	if !strings.Contains(err.Error(), "verifier log") {
		t.Errorf("message %q does not carry the log", err)
	}
}

// Add puts the whole pair in or nothing: a pair that cannot go in leaves
// no entry behind, so the program never finds half a pair.
func TestAddIsAllOrNothing(t *testing.T) {
	m := openMap(t)
	c := newChain(t)
	p, err := m.Add(c.a, c.b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Add(c.a, c.b); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("adding the pair twice: %v, want EEXIST", err)
	}
	// x's entry goes in first, then a's fails: x's must be taken out.
	other := newChain(t)
	if _, err := m.Add(other.a, c.a); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("adding a socket already paired: %v, want EEXIST", err)
	}
	cook, err := Cookie(other.a)
	if err != nil {
		t.Fatal(err)
	}
	if err := deleteElem(m.peers, unsafe.Pointer(&cook)); !errors.Is(err, unix.ENOENT) {
		t.Errorf("the refused pair left an entry behind (delete: %v)", err)
	}
	if err := m.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(p); err != nil {
		t.Errorf("removing a pair twice: %v", err)
	}
	if p, err = m.Add(c.a, c.b); err != nil {
		t.Fatalf("adding the pair again after Remove: %v", err)
	}
	m.Remove(p)
	// Not a TCP socket: refused, nothing left.
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp)
	if _, err := m.Add(other.a, udp); err == nil {
		t.Error("a UDP socket was accepted")
	}
}

const unprivilegedChild = "SOCKMAP_UNPRIVILEGED_CHILD"

// Without CAP_BPF and CAP_NET_ADMIN Open fails with an error wrapping
// EPERM that says which step failed, and leaves nothing open.
func TestOpenUnprivileged(t *testing.T) {
	if os.Getenv(unprivilegedChild) != "" {
		fds := testutil.OpenFDs(t)
		m, err := Open(4)
		if err == nil {
			m.Close()
			t.Fatal("Open succeeded without privileges")
		}
		t.Logf("Open: %v", err)
		if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
			t.Errorf("Open: %v, want EPERM or EACCES", err)
		}
		if !strings.HasPrefix(err.Error(), "sockmap: ") {
			t.Errorf("message %q does not name the package", err)
		}
		if n := testutil.OpenFDs(t); n != fds {
			t.Errorf("%d fds open after the failure, %d before", n, fds)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("runs the test again as user nobody, which needs root")
	}
	testutil.RunAsNobody(t, "TestOpenUnprivileged", unprivilegedChild+"=1")
}
