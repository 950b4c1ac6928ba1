package cdp

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// ChromiumPath is where the Debian package chromium installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Wait bounds every wait on the browser; generous because the test
// machine may be loaded and Chromium starts slowly.
const Wait = 60 * time.Second

// Tab speaks the DevTools protocol to one page target.
type Tab struct {
	ws     *wsConn
	nextID int
}

// Call sends one command and returns its result, skipping the events that
// arrive in between.
func (d *Tab) Call(method string, params any) (json.RawMessage, error) {
	d.nextID++
	msg, err := json.Marshal(map[string]any{"id": d.nextID, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(Wait)
	if err := d.ws.writeText(msg, deadline); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	for {
		raw, err := d.ws.readText(deadline)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &resp); err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		if resp.ID != d.nextID {
			continue
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, resp.Error.Message)
		}
		return resp.Result, nil
	}
}

// Eval runs expr in the page and returns its value as a string; a thrown
// exception (an element not rendered yet) is returned as an error.
func (d *Tab) Eval(expr string) (string, error) {
	raw, err := d.Call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return "", err
	}
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return "", err
	}
	if res.Exception != nil {
		return "", errors.New(res.Exception.Text)
	}
	return fmt.Sprint(res.Result.Value), nil
}

// WaitEval evaluates expr until it yields want, since the page renders
// asynchronously after its fetch. An exception counts as "not yet": the
// element it reads may not exist before the first render.
func (d *Tab) WaitEval(t testing.TB, expr, want string) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		got, err := d.Eval(expr)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q (error %v), want %q", expr, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var devtoolsLine = regexp.MustCompile(`DevTools listening on (ws://[^\s]+)`)

// Skip skips the test, naming the package to install, when Chromium is
// not installed.
func Skip(t testing.TB) {
	t.Helper()
	testutil.SkipShort(t, "Chromium")
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Skipf("install chromium (Debian package chromium) to run this test: %v", err)
	}
}

// Start runs headless Chromium on a free DevTools port and connects to
// its first tab; everything is torn down by t.Cleanup. extra are more
// command-line switches.
func Start(t testing.TB, extra ...string) *Tab {
	t.Helper()
	testutil.SkipShort(t, "Chromium")
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.CommandContext(ctx, ChromiumPath, append(args, "about:blank")...)
	// Chromium forks renderers; its own process group lets cleanup kill
	// exactly the processes this test started, and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-drained
		_ = cmd.Wait()
	})

	// Chromium prints its DevTools address on stderr; keep draining the
	// pipe afterwards so it never blocks on a full one.
	found := make(chan string, 1)
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	var browserURL string
	select {
	case browserURL = <-found:
	case <-drained:
		t.Fatal("chromium exited without a DevTools address")
	case <-time.After(Wait):
		t.Fatal("timed out waiting for chromium's DevTools address")
	}

	host := strings.TrimPrefix(browserURL, "ws://")
	host = host[:strings.IndexByte(host, '/')]
	var pageURL string
	testutil.WaitFor(t, Wait, "a page target", func() bool {
		pageURL, err = pageTarget("http://" + host + "/json/list")
		return err == nil
	})
	ws, err := dialWebSocket(pageURL, Wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &Tab{ws: ws}
}

// pageTarget returns the DevTools WebSocket URL of the first page target.
func pageTarget(listURL string) (string, error) {
	resp, err := http.Get(listURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		return "", err
	}
	for _, tg := range targets {
		if tg.Type == "page" && tg.WS != "" {
			return tg.WS, nil
		}
	}
	return "", errors.New("no page target yet")
}

// Screenshot captures the page as a PNG into path.
func (d *Tab) Screenshot(path string) error {
	raw, err := d.Call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": false})
	if err != nil {
		return err
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(raw, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// SetViewport makes the page width x height CSS pixels, as a window of
// that size shows it.
func (d *Tab) SetViewport(width, height int) error {
	_, err := d.Call("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false})
	return err
}

// CheckFits fails the test when the page is wider than its viewport or a
// button of the element matching selector lies outside it.
func (d *Tab) CheckFits(t testing.TB, selector string) {
	t.Helper()
	d.WaitEval(t, `document.documentElement.scrollWidth <= window.innerWidth`, "true")
	d.WaitEval(t, `JSON.stringify([...document.querySelectorAll("`+selector+` button")].filter(b => {
		const r = b.getBoundingClientRect(); return r.width > 0 && (r.right > window.innerWidth || r.left < 0); }).map(b => b.outerHTML))`, "[]")
}
