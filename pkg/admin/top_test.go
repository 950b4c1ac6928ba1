package admin

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestTopKeys drives top with keys from a pipe: select the second backend,
// drain it after a confirmation, cancel a maint, make it ready, quit. The
// tmux test in cmd/splicer runs it on a real terminal.
func TestTopKeys(t *testing.T) {
	src := newFakeSource()
	addr := startTestServer(t, src)
	in, keys, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	defer keys.Close()
	var screen testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- RunTop(context.Background(), []string{"-interval", "100ms", "-admin", addr, "-token-file", tokenFile(t, operatorToken)}, in, &screen)
	}()
	testutil.WaitFor(t, browserWait, "the first screen", func() bool { return strings.Contains(screen.String(), "[::1]:5433") })
	if !strings.HasPrefix(screen.String(), escAltScreen) {
		t.Errorf("top did not switch to the alternate screen: %q", screen.String()[:20])
	}
	send := func(k string) {
		if _, err := keys.WriteString(k); err != nil {
			t.Fatal(err)
		}
	}
	send("\x1b[B") // down: [::1]:5433
	send("m")
	testutil.WaitFor(t, browserWait, "the maint question", func() bool {
		return strings.Contains(screen.String(), "maint pg/[::1]:5433? y to confirm, any other key cancels")
	})
	send("n")
	testutil.WaitFor(t, browserWait, "the cancel", func() bool { return strings.Contains(screen.String(), "maint cancelled") })
	send("k") // up: a
	send("d")
	testutil.WaitFor(t, browserWait, "the drain question", func() bool { return strings.Contains(screen.String(), "drain pg/a? y to confirm") })
	if st := src.Stats().Frontends[0].Backends[0].State; st != "ready" {
		t.Fatalf("drained before the confirmation: %s", st)
	}
	send("y")
	testutil.WaitFor(t, browserWait, "a drained", func() bool { return src.Stats().Frontends[0].Backends[0].State == "drain" })
	testutil.WaitFor(t, browserWait, "the drain reported", func() bool { return strings.Contains(screen.String(), "pg/a: state drain") })
	send("j")
	send("r")
	testutil.WaitFor(t, browserWait, "[::1]:5433 ready", func() bool { return src.Stats().Frontends[0].Backends[1].State == "ready" })
	send("q")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("top did not quit on q")
	}
	if !strings.HasSuffix(screen.String(), escMainScreen) {
		t.Error("top did not restore the main screen")
	}
}

// TestTopRefusedKey shows the daemon's refusal on the status line: a
// viewer may watch but not drain.
func TestTopRefusedKey(t *testing.T) {
	src := newFakeSource()
	addr := startTestServer(t, src)
	in, keys, _ := os.Pipe()
	defer in.Close()
	var screen testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- RunTop(context.Background(), []string{"-admin", addr, "-token-file", tokenFile(t, viewerToken)}, in, &screen)
	}()
	keys.WriteString("dy")
	testutil.WaitFor(t, browserWait, "the refusal", func() bool {
		return strings.Contains(screen.String(), "drain pg/a refused: role viewer lacks permission backend.state (HTTP 403)")
	})
	keys.Close() // end of input quits too
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]`)

// TestTopScreen renders a small terminal: every line fits its width, the
// selected row is shown reversed and kept in view while the table scrolls.
func TestTopScreen(t *testing.T) {
	v := &topView{addr: "http://127.0.0.1:9090", st: newFakeSource().withUDP().Stats()}
	v.selFrontend, v.selBackend = "pg", "a"
	now := v.st.StartedAt.Add(time.Hour)
	const cols, rows = 60, 8
	text := v.screen(cols, rows, now)
	lines := strings.Split(text, "\r\n")
	if len(lines) != rows {
		t.Fatalf("%d lines for %d rows:\n%q", len(lines), rows, text)
	}
	for i, l := range lines {
		if n := len([]rune(ansi.ReplaceAllString(l, ""))); n > cols {
			t.Errorf("line %d has %d columns: %q", i, n, l)
		}
	}
	plain := ansi.ReplaceAllString(text, "")
	if !strings.Contains(plain, "splicer 1.2.3  up 1h2m  connections 2/10000") || !strings.Contains(plain, "NAME") {
		t.Errorf("header:\n%s", plain)
	}
	if !strings.Contains(text, escReverse+"  a ") {
		t.Errorf("selected row not reversed:\n%q", text)
	}
	// Select the UDP backend, the last row: the table scrolls to it.
	v.selFrontend, v.selBackend = "dns", "ns1"
	plain = ansi.ReplaceAllString(v.screen(cols, rows, now), "")
	if !strings.Contains(plain, "  ns1") || strings.Contains(plain, "\npg ") {
		t.Errorf("not scrolled to ns1:\n%s", plain)
	}
}

func TestSplitKeys(t *testing.T) {
	got := strings.Join(splitKeys([]byte("j\x1b[A\x1bOBq\x03é")), ",")
	if got != "j,up,down,q,\x03,é" {
		t.Errorf("%q", got)
	}
}
