package admin

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil/cdp"
)

// browserWait bounds every wait on the browser.
const browserWait = cdp.Wait

func TestPageServed(t *testing.T) {
	got := do(t, newTestServer(newFakeSource(), Options{}).Handler(), http.MethodGet, "/", "")
	if got.status != 200 || got.header.Get("Content-Type") != "text/html; charset=utf-8" ||
		got.header.Get("Content-Security-Policy") != pageCSP || got.body != string(pageHTML) {
		t.Errorf("GET /: %d %q %q", got.status, got.header.Get("Content-Type"), got.header.Get("Content-Security-Policy"))
	}
	// Self-contained: nothing loaded from anywhere, and no address of
	// another origin in the page's own code (uPlot's header names its
	// home in a comment).
	if m := regexp.MustCompile(`(src|href)=|url\(|@import`).FindString(got.body); m != "" {
		t.Errorf("page loads an asset: %q", m)
	}
	if m := regexp.MustCompile(`https?://`).FindString(pageTemplate); m != "" {
		t.Errorf("page refers to another origin: %q", m)
	}
	// uPlot is embedded whole, with its licence, in a script of its own:
	// the policy allows exactly two scripts and two styles.
	if !strings.Contains(got.body, "Copyright (c) 2022 Leon Sorokin") || !strings.Contains(got.body, uplotJS) ||
		strings.Contains(got.body, uplotMarker) {
		t.Error("uPlot or its licence is missing from the page")
	}
	csp := got.header.Get("Content-Security-Policy")
	if n := strings.Count(csp, "'sha256-"); n != 4 || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP with %d hashes: %s", n, csp)
	}
}

// TestUPlotIsTheRelease pins the embedded library to the files of the npm
// package uplot 1.6.32 (npm pack uplot@1.6.32, dist/ and LICENSE), so a
// change to them is deliberate; docs/architecture.md says how to update.
func TestUPlotIsTheRelease(t *testing.T) {
	for name, want := range map[string]string{
		"uplot.min.js":  "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
		"uplot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
		"uplot.LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
	} {
		b, err := os.ReadFile(filepath.Join("assets", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != want {
			t.Errorf("assets/%s: sha256 %s, want %s", name, got, want)
		}
	}
}

// sectionsJS reads every frontend section of the page: heading, summary,
// and each table row's cells, a health cell cut to its first word (the
// rest is the time since the fake's last change, which moves).
const sectionsJS = `JSON.stringify([...document.querySelectorAll("#frontends section")].map(s => [
	s.querySelector("h2").textContent, s.querySelector("div.meta").textContent,
	...[...s.querySelectorAll("table.backends tr")].map(r => [...r.cells].map(c =>
		c.classList.contains("health") ? c.textContent.split(" ")[0] : c.textContent).join("|"))]))`

// TestPageRendersProtocols loads the page on a TCP and a UDP frontend and
// reads back every section's heading, summary and table cells: the TCP
// ones with their rates (now and peak), the UDP one with flows, datagrams,
// drops by reason and, per backend, ICMP errors and foreign drops. The
// admin port has no users, so the page is read-only: no buttons, and a
// line saying so. Each frontend lists its own connections.
func TestPageRendersProtocols(t *testing.T) {
	skipWithoutChromium(t)
	base := serveTCP(t, New(newFakeSource().withUDP(), nil, zerolog.Nop(), Options{History: fakeHistory{}}))
	tab := startChromium(t)
	if _, err := tab.call("Page.navigate", map[string]any{"url": base + "/"}); err != nil {
		t.Fatal(err)
	}
	want := `[["pg tcp 127.0.0.1:6432 · leastconn",` +
		`"active 2 (peak 6) of 100 · queued now 1 (peak 4) · 12.5 conn/s (peak 140) · 0.5 errors/s (peak 2.0) · ` +
		`1.5k B/s in (peak 12k) · 2.5M B/s out (peak 3.2M) · in 1000 B · out 4.9 KiB · total 10 · rejected 1 (access_list 5, queue_timeout 1) · ever queued 4",` +
		`"backend|health|state|weight|active|peak|conn/s|in / out B/s|errors/s|connect ms|total|last 10m|last check|",` +
		`"a|UP|ready|100|2 / 50|6|12.5 (140)|1.5k / 2.5M|0.5 (2.0)|0.50 / 1.00|7||ok (1.50 ms)|",` +
		`"[::1]:5433 (backup)|DOWN|drain|50 (10)|0|1|–|–|–|0.00 / 0.00|3||connect: connection refused (0.20 ms)|"],` +
		`["cache tcp 127.0.0.1:6380, [::1]:6380 · maglev",` +
		`"active 0 (peak 0) · queued now 0 · in 0 B · out 0 B · total 0 · rejected 0 · ever queued 0",` +
		`"backend|health|state|weight|active|peak|conn/s|in / out B/s|errors/s|connect ms|total|last 10m|last check|"],` +
		`["dns udp 127.0.0.1:5353 · maglev",` +
		`"flows 3 (peak 4) · total 12 · in 3.9 KiB · out 8.8 KiB · datagrams in 40 · out 38 · dropped foreign_source 2, max_flows 4, refused 1",` +
		`"backend|health|state|weight|flows|peak|flows/s|in / out B/s|datagrams in / out|ICMP errors|foreign drops|last 10m|last check|",` +
		`"ns1|unchecked|ready|1|3|4|–|–|40 / 37|refused 1|2|||"]]`
	tab.waitEval(t, sectionsJS, want)
	tab.waitEval(t, `document.getElementById("who").textContent`, "read-only: no users are configured")
	tab.waitEval(t, `document.querySelectorAll("#frontends button:not(.link)").length`, "0")
	// The graphs hold the one sample the fake history has.
	tab.waitEval(t, `charts.get("pg|conns").u.data[1].join()`, "2.5")
	tab.waitEval(t, `(document.querySelectorAll("details.conns").forEach(d => d.open = true), "opened")`, "opened")
	tab.waitEval(t, `JSON.stringify([...document.querySelectorAll("table[data-conns]")].map(t =>
		[t.dataset.conns, ...[...t.querySelectorAll("tr[data-conn]")].map(r => r.dataset.conn)]))`,
		`[["pg","3","8","9"],["cache","5"],["dns"]]`)
	tab.waitEval(t, `document.querySelector('details.conns[data-frontend="pg"] summary').textContent`, "connections (3)")
}

// TestPageLayout renders the page 1280 px wide with a probe error far
// longer than its cell: nothing scrolls sideways, every button stays on
// the screen, and the message is cut with the whole of it on hover. A
// passive-only backend shows what passive detection saw, with no probe
// duration.
func TestPageLayout(t *testing.T) {
	skipWithoutChromium(t)
	src := newFakeSource()
	long := "connect: " + strings.Repeat("a very long probe error message, ", 12) + "the end"
	src.st.Frontends[0].Backends[1].Health.LastMessage = long
	src.st.Frontends[0].Backends[0].Health = stats.HealthStats{Checked: true, Check: "none", Up: true, PassiveFailures: 2}
	base := serveTCP(t, newTestServer(src, Options{History: fakeHistory{}}))
	tab := startChromium(t, "--window-size=1280,900")
	if err := tab.SetViewport(1280, 900); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.call("Page.navigate", map[string]any{"url": base + "/"}); err != nil {
		t.Fatal(err)
	}
	tab.waitEval(t, `(document.getElementById("login").hidden ? "login form not shown yet" : (document.getElementById("token").value = "`+operatorToken+`", document.getElementById("login-button").click(), "sent"))`, "sent")
	tab.waitEval(t, `document.querySelectorAll('tr[data-backend] button[data-state]').length`, "4")
	tab.waitEval(t, `document.querySelector('tr[data-backend="[::1]:5433"] td.msg').title`, long+" (0.20 ms)")
	tab.waitEval(t, `(c => c.scrollWidth > c.clientWidth)(document.querySelector('tr[data-backend="[::1]:5433"] td.msg'))`, "true")
	tab.waitEval(t, `window.innerWidth`, "1280")
	tab.CheckFits(t, "#app")
	tab.waitEval(t, `document.querySelector('tr[data-backend="a"] td.msg').textContent`, "passive: 2 failures in a row")
	tab.waitEval(t, `document.querySelector('tr[data-backend="a"] td.health').textContent`, "passive UP")
}

// devtoolsTab is the browser tab of pkg/testutil/cdp under the names
// these tests use.
type devtoolsTab struct{ *cdp.Tab }

func (d *devtoolsTab) call(method string, params any) (json.RawMessage, error) {
	return d.Tab.Call(method, params)
}

func (d *devtoolsTab) waitEval(t *testing.T, expr, want string) { d.Tab.WaitEval(t, expr, want) }

func skipWithoutChromium(t *testing.T) { cdp.Skip(t) }

func startChromium(t *testing.T, extra ...string) *devtoolsTab {
	return &devtoolsTab{cdp.Start(t, extra...)}
}

// TestPageScopedRole logs in as an operator scoped to "cache": the page
// offers no change to pg's backends and lists only cache's connections,
// since the admin port would refuse the rest.
func TestPageScopedRole(t *testing.T) {
	skipWithoutChromium(t)
	base := serveTCP(t, newTestServer(newFakeSource(), Options{History: fakeHistory{}}))
	tab := startChromium(t)
	if _, err := tab.call("Page.navigate", map[string]any{"url": base + "/"}); err != nil {
		t.Fatal(err)
	}
	// The page shows its login form once its script has run (the submit
	// handler attached) and found no session; a click before that submits
	// the form as plain HTML, reloading the page, and the login never
	// happens.
	tab.waitEval(t, `(document.getElementById("login").hidden ? "login form not shown yet" : (document.getElementById("token").value = "`+scopedToken+`", document.getElementById("login-button").click(), "sent"))`, "sent")
	tab.waitEval(t, `document.getElementById("who").textContent`, "sam (operator:cache) log out")
	tab.waitEval(t, `document.querySelectorAll('section[data-frontend="pg"] tr[data-backend]').length`, "2")
	tab.waitEval(t, `document.querySelectorAll('section[data-frontend="pg"] button[data-state]').length`, "0")
	tab.waitEval(t, `JSON.stringify([...document.querySelectorAll("details.conns")].map(d => d.dataset.frontend))`, `["cache"]`)
}
