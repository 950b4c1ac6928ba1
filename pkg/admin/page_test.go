package admin

import (
	"bufio"
	"context"
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

	"github.com/rs/zerolog"
)

const chromiumPath = "/usr/bin/chromium"

// browserWait bounds every wait on the browser; generous because the test
// machine may be loaded and Chromium starts slowly.
const browserWait = 60 * time.Second

func TestPageServed(t *testing.T) {
	got := do(t, newTestServer(newFakeSource(), Options{}).Handler(), http.MethodGet, "/", "")
	if got.status != 200 || got.header.Get("Content-Type") != "text/html; charset=utf-8" ||
		got.header.Get("Content-Security-Policy") != pageCSP || got.body != string(pageHTML) {
		t.Errorf("GET /: %d %q %q", got.status, got.header.Get("Content-Type"), got.header.Get("Content-Security-Policy"))
	}
	// Self-contained: no reference to any other origin.
	if m := regexp.MustCompile(`(src|href)=|https?://`).FindString(got.body); m != "" {
		t.Errorf("page refers to an external asset: %q", m)
	}
}

// TestPageRendersProtocols loads the page on a TCP and a UDP frontend and
// reads back every section's heading, summary and table cells: the TCP ones
// exactly as before UDP existed, the UDP one with flows, datagrams, drops
// by reason and, per backend, ICMP errors and foreign drops. The admin port
// has no users, so the page is read-only: no buttons, and a line saying so.
func TestPageRendersProtocols(t *testing.T) {
	skipWithoutChromium(t)
	base := serveTCP(t, New(newFakeSource().withUDP(), nil, zerolog.Nop(), Options{}))
	tab := startChromium(t)
	if _, err := tab.call("Page.navigate", map[string]any{"url": base + "/"}); err != nil {
		t.Fatal(err)
	}
	const sectionsJS = `JSON.stringify([...document.querySelectorAll("#frontends section")].map(s => [
		s.querySelector("h2").textContent, s.querySelector("div.meta").textContent,
		...[...s.querySelectorAll("tr")].map(r => [...r.cells].map(c => c.textContent).join("|"))]))`
	want := `[["pg tcp 127.0.0.1:6432 · leastconn",` +
		`"active 2 · total 10 · rejected 1 · queued 4 · in 1000 B · out 4.9 KiB",` +
		`"backend|health|state|weight|active|total|in|out|connect p50|connect p99|connect failures|resets|last check|",` +
		`"a|UP|ready|100|2|7|700 B|3.4 KiB|0.50 ms|1.00 ms|refused 2, timeout 1|1|ok (1.50 ms)|",` +
		`"[::1]:5433 (backup)|DOWN|drain|50 (10)|0|3|300 B|1.5 KiB|0.00 ms|0.00 ms|0|0|connect: connection refused (0.20 ms)|"],` +
		`["cache tcp 127.0.0.1:6380, [::1]:6380 · maglev",` +
		`"active 0 · total 0 · rejected 0 · queued 0 · in 0 B · out 0 B",` +
		`"backend|health|state|weight|active|total|in|out|connect p50|connect p99|connect failures|resets|last check|"],` +
		`["dns udp 127.0.0.1:5353 · maglev",` +
		`"flows 3 · total 12 · in 3.9 KiB · out 8.8 KiB · datagrams in 40 · datagrams out 38 · dropped foreign_source 2, max_flows 4, refused 1",` +
		`"backend|health|state|weight|flows|total|in|out|datagrams in|datagrams out|ICMP errors|foreign drops|last check|",` +
		`"ns1|unchecked|ready|1|3|12|3.9 KiB|8.8 KiB|40|37|refused 1|2||"]]`
	tab.waitEval(t, sectionsJS, want)
	tab.waitEval(t, `document.getElementById("who").textContent`, "read-only: no users are configured")
	tab.waitEval(t, `document.querySelectorAll("#conn-rows tr").length`, "4")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// devtoolsTab speaks the DevTools protocol to one page target.
type devtoolsTab struct {
	ws     *wsConn
	nextID int
}

// call sends one command and returns its result, skipping the events that
// arrive in between.
func (d *devtoolsTab) call(method string, params any) (json.RawMessage, error) {
	d.nextID++
	msg, err := json.Marshal(map[string]any{"id": d.nextID, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(browserWait)
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

// eval runs expr in the page and returns its value as a string; a thrown
// exception (an element not rendered yet) is returned as an error.
func (d *devtoolsTab) eval(expr string) (string, error) {
	raw, err := d.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
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

// waitEval evaluates expr until it yields want, since the page renders
// asynchronously after its fetch. An exception counts as "not yet": the
// element it reads may not exist before the first render.
func (d *devtoolsTab) waitEval(t *testing.T, expr, want string) {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		got, err := d.eval(expr)
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

func skipWithoutChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("install chromium (Debian package chromium) to run this test: %v", err)
	}
}

// startChromium runs headless Chromium on a free DevTools port and connects
// to its first tab; everything is torn down by t.Cleanup. extra are more
// command-line switches.
func startChromium(t *testing.T, extra ...string) *devtoolsTab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.CommandContext(ctx, chromiumPath, append(args, "about:blank")...)
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
	case <-time.After(browserWait):
		t.Fatal("timed out waiting for chromium's DevTools address")
	}

	host := strings.TrimPrefix(browserURL, "ws://")
	host = host[:strings.IndexByte(host, '/')]
	var pageURL string
	waitFor(t, "a page target", func() bool {
		pageURL, err = pageTarget("http://" + host + "/json/list")
		return err == nil
	})
	ws, err := dialWebSocket(pageURL, browserWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &devtoolsTab{ws: ws}
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
