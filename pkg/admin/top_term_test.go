package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// openPTY opens a pseudo-terminal of cols x rows and returns its two
// ends: what a terminal emulator holds (master) and what a program runs
// on (tty). Both close when the test ends.
func openPTY(t *testing.T, cols, rows uint16) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows}); err != nil {
		t.Fatal(err)
	}
	return master, tty
}

// termios returns the terminal's settings.
func termios(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	st, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return *st
}

// TestTopOnTerminal runs top on a pseudo-terminal as an operator's shell
// would: keys are read raw (no echo, no line editing) while it runs, the
// screen fits the window, a daemon that goes away is said so over the
// last figures, and quitting leaves the terminal as it was.
func TestTopOnTerminal(t *testing.T) {
	master, tty := openPTY(t, 70, 12)
	before := termios(t, tty)
	if before.Lflag&(unix.ECHO|unix.ICANON) != unix.ECHO|unix.ICANON {
		t.Fatalf("a new terminal without echo and line editing: %#x", before.Lflag)
	}
	var screen testutil.SyncBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	s := newTestServer(newFakeSource(), Options{})
	addr := serveTCP(t, s)
	done := make(chan error, 1)
	go func() {
		done <- RunTop(context.Background(), []string{"-interval", "100ms", "-admin", addr, "-token-file", tokenFile(t, viewerToken)}, tty, tty)
	}()
	// Three refreshes take longer than readKeys's poll: it waited once
	// without a key.
	testutil.WaitFor(t, browserWait, "four screens", func() bool { return strings.Count(screen.String(), escHome) >= 4 })
	if st := termios(t, tty); st.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 {
		t.Errorf("top runs with local modes %#x: echo, line editing or signals left on", st.Lflag)
	}
	last := screen.String()[strings.LastIndex(screen.String(), escHome):]
	plain := ansi.ReplaceAllString(last, "")
	lines := strings.Split(strings.TrimRight(plain, "\r\n"), "\n")
	if len(lines) != 12 {
		t.Errorf("%d lines on a 12-row terminal:\n%s", len(lines), plain)
	}
	for i, l := range lines {
		if n := len([]rune(strings.TrimRight(l, "\r"))); n > 70 {
			t.Errorf("line %d has %d columns on a 70-column terminal: %q", i, n, l)
		}
	}

	s.Shutdown(t.Context())
	// The status line says how old the figures are within the 70
	// columns, before the error that runs off the screen.
	stale := regexp.MustCompile(`refresh failed, showing figures [0-9.]+m?s old: admin GET /api/v`)
	testutil.WaitFor(t, browserWait, "the failed refresh", func() bool {
		return stale.MatchString(ansi.ReplaceAllString(screen.String(), ""))
	})
	master.Write([]byte("q"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("top did not quit on q")
	}
	if after := termios(t, tty); after != before {
		t.Errorf("the terminal after top:\n%+v\nwant as before:\n%+v", after, before)
	}
}

// TestTopStopsWithItsContext ends top by cancelling its context, as the
// CLI does on SIGTERM: it returns without error and gives the terminal
// back.
func TestTopStopsWithItsContext(t *testing.T) {
	_, tty := openPTY(t, 80, 24)
	before := termios(t, tty)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var screen testutil.SyncBuffer
	go func() {
		done <- RunTop(ctx, []string{"-admin", startTestServer(t, newFakeSource()), "-token-file", tokenFile(t, viewerToken)}, tty, &screen)
	}()
	testutil.WaitFor(t, browserWait, "the first screen", func() bool { return strings.Contains(screen.String(), "[::1]:5433") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if after := termios(t, tty); after != before {
		t.Error("the terminal was not restored")
	}
	if !strings.HasSuffix(screen.String(), escMainScreen) {
		t.Error("the main screen was not restored")
	}
}

// TestRunTopRefusals gives top what it refuses before it takes the
// terminal.
func TestRunTopRefusals(t *testing.T) {
	in, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	defer w.Close()
	empty := tokenFile(t, "")
	for _, tc := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"-frob"}, "", true},
		{[]string{"now"}, "", true},
		{[]string{"-interval", "50ms"}, "", true},
		{[]string{"-token-file", empty}, "token file " + empty + " is empty", false},
	} {
		var out strings.Builder
		err := RunTop(context.Background(), tc.args, in, &out)
		if tc.usage && !errors.Is(err, ErrUsage) || !tc.usage && (err == nil || err.Error() != tc.want) {
			t.Errorf("top %v: %v", tc.args, err)
		}
		if out.Len() != 0 {
			t.Errorf("top %v wrote %q", tc.args, out.String())
		}
	}
	// With no backend, the keys that act on one do nothing.
	v := &topView{}
	for _, k := range []string{"d", "m", "r", "up", "down"} {
		if !v.key(context.Background(), nil, k) || v.pending != "" || v.status != "" {
			t.Errorf("key %q with no backend: pending %q status %q", k, v.pending, v.status)
		}
	}
}
