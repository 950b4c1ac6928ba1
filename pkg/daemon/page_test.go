package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/cdp"
)

// screenshotEnv names a file the live page test writes its screenshot to,
// for people to look at (docs/admin-page.png is made this way); without
// it the screenshot goes to the test's temporary directory.
const screenshotEnv = "SPLICER_SCREENSHOT"

// pageRefresh is the page's refresh period (refreshMillis in page.html).
const pageRefresh = 2 * time.Second

// TestLivePageInChromium starts the daemon with two demo backends and
// traffic through them, loads the admin page in headless Chromium as an
// operator and checks, from the DOM and the charts' data:
//   - the graphs of the frontend and the sparklines of the backends hold
//     points, and the latest connection rate is not zero;
//   - the page fits 1280 px: nothing scrolls sideways, every button is on
//     the screen;
//   - a drain asks first, and cancelling it changes nothing;
//   - a backend taken down turns red within one refresh of the daemon
//     knowing it;
//   - a connection killed from the page's list, after its confirmation,
//     ends with a reset on the client's side.
func TestLivePageInChromium(t *testing.T) {
	cdp.Skip(t)
	backA, backB := startDemo(t), startDemo(t)
	users, tokens := writeUsers(t, "operator")
	cfg, err := config.New().AdminListen("127.0.0.1:0").AdminUsersFile(users).
		Frontend("pg").Listen("127.0.0.1:0").Strategy(config.StrategyRoundRobin).
		HealthCheck("tcp").HealthInterval(200*time.Millisecond).HealthRise(1).HealthFall(1).
		Backend(backA.Addr().String(), 2).BackendOpts(config.BackendOptions{Name: "db1"}).
		Backend(backB.Addr().String(), 1).BackendOpts(config.BackendOptions{Name: "db2"}).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	var front string
	testutil.WaitFor(t, 5*time.Second, "frontend bound", func() bool {
		if a := d.srv.Addrs("pg"); len(a) > 0 {
			front = a[0].String()
		}
		return front != ""
	})
	base := "http://" + d.adminLn.Addr().String()
	operator := tokens["operator"]

	ctx, stop := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	t.Cleanup(func() { stop(); traffic.Wait() })
	traffic.Go(func() { driveTraffic(ctx, front) })
	// Two clients that stay: the connection list has someone to kill.
	held := []net.Conn{holdConnection(t, front), holdConnection(t, front)}

	tab := cdp.Start(t, "--window-size=1280,1000")
	if err := tab.SetViewport(1280, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Call("Page.navigate", map[string]any{"url": base + "/"}); err != nil {
		t.Fatal(err)
	}
	// The page shows its login form once its script has run (the submit
	// handler attached) and found no session; a click before that submits
	// the form as plain HTML, reloading the page, and the login never
	// happens.
	tab.WaitEval(t, `(document.getElementById("login").hidden ? "login form not shown yet" : (document.getElementById("token").value = "`+operator+`", document.getElementById("login-button").click(), "sent"))`, "sent")
	tab.WaitEval(t, `document.getElementById("who").textContent`, "operator (operator) log out")

	// The graphs fill as the daemon samples, one point a second.
	tab.WaitEval(t, `charts.get("pg|conns").u.data[1].filter(v => v > 0).length >= 4`, "true")
	tab.WaitEval(t, `["pg|bytes", "pg|active", "pg|errors", "pg|connect", "pg\u0000db1|spark", "pg\u0000db2|spark"].every(k =>
		charts.has(k) && charts.get(k).u.data[0].length >= 4 && charts.get(k).root.isConnected)`, "true")
	tab.WaitEval(t, `Number(document.querySelector('[data-chart="pg|conns"]').dataset.points) >= 4`, "true")
	tab.WaitEval(t, `charts.get("pg|connect").u.data[2].some(v => v > 0)`, "true") // p99 in ms
	tab.WaitEval(t, `document.querySelector('tr[data-backend="db1"] td:nth-child(7)').textContent !== "–"`, "true")

	// A backend's own graphs open under its row.
	tab.WaitEval(t, `(document.querySelector('tr[data-backend="db1"] button.link').click(), "clicked")`, "clicked")
	tab.WaitEval(t, `document.querySelectorAll('tr[data-detail="db1"] .chart').length`, "5")
	tab.WaitEval(t, `charts.get("pg\u0000db1|conns").u.data[1].filter(v => v > 0).length > 0`, "true")

	// The connection list of the frontend.
	tab.WaitEval(t, `(document.querySelector('details.conns[data-frontend="pg"]').open = true, "opened")`, "opened")
	tab.WaitEval(t, `document.querySelectorAll('table[data-conns="pg"] tr[data-conn]').length >= 2`, "true")

	tab.WaitEval(t, `window.innerWidth`, "1280")
	tab.CheckFits(t, "#app")

	// drain asks first; cancelled, nothing changes.
	tab.WaitEval(t, `(document.querySelector('tr[data-backend="db1"] button[data-state="drain"]').click(), "clicked")`, "clicked")
	tab.WaitEval(t, `document.getElementById("confirm").hidden ? "hidden" : document.getElementById("confirm-text").textContent`, "drain pg/db1? ")
	tab.WaitEval(t, `(document.getElementById("confirm-no").click(), document.getElementById("confirm").hidden)`, "true")
	if st := getStats(t, base, operator).Frontends[0].Backends[0].State; st != "ready" {
		t.Fatalf("a cancelled drain changed backend db1 to %s", st)
	}

	// db2 goes down: the page shows it red within one refresh of the daemon
	// knowing it.
	backB.Close()
	testutil.WaitFor(t, 10*time.Second, "db2 down in the API", func() bool {
		return !getStats(t, base, operator).Frontends[0].Backends[1].Health.Up
	})
	known := time.Now()
	waitRed := `(r => r.classList.contains("down") && getComputedStyle(r.querySelector("td.health")).backgroundColor)(document.querySelector('tr[data-backend="db2"]'))`
	for {
		got, err := tab.Eval(waitRed)
		if err == nil && got == "rgb(245, 194, 194)" {
			break
		}
		if time.Since(known) > pageRefresh+time.Second {
			t.Fatalf("backend db2 not red %v after the API said down: %q %v", time.Since(known), got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tab.WaitEval(t, `document.querySelector('tr[data-backend="db2"] td.health').textContent.startsWith("DOWN ")`, "true")
	tab.WaitEval(t, `document.querySelector('tr[data-backend="db2"] td.msg').title.includes("refused")`, "true")
	tab.CheckFits(t, "#app")
	screenshot(t, tab)

	// kill asks first; confirmed, the client gets a reset.
	id := heldConnID(t, tab, held[0])
	tab.WaitEval(t, fmt.Sprintf(`(document.querySelector('button[data-kill="%d"]').click(), document.getElementById("confirm-text").textContent)`, id),
		fmt.Sprintf("kill connection %d from %s (both sides get a reset)? ", id, held[0].LocalAddr()))
	tab.WaitEval(t, `(document.getElementById("confirm-yes").click(), "confirmed")`, "confirmed")
	held[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(held[0]); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the killed client read %v, want a reset", err)
	}
	tab.WaitEval(t, fmt.Sprintf(`document.querySelector('tr[data-conn="%d"]') === null`, id), "true")
}

// screenshot writes the page as a PNG to $SPLICER_SCREENSHOT, after a
// minute more of traffic so that the graphs have a shape, or else at once
// to the test's temporary directory.
func screenshot(t *testing.T, tab *cdp.Tab) {
	t.Helper()
	shot := os.Getenv(screenshotEnv)
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "admin-page.png")
	} else {
		tab.WaitEval(t, `hist.times.length >= 60 || "waiting"`, "true")
	}
	if err := tab.Screenshot(shot); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}

// heldConnID finds the ID the page lists for the client connection c.
func heldConnID(t *testing.T, tab *cdp.Tab, c net.Conn) uint64 {
	t.Helper()
	var id uint64
	testutil.WaitFor(t, 10*time.Second, "the held connection listed", func() bool {
		got, err := tab.Eval(`JSON.stringify([...document.querySelectorAll('table[data-conns="pg"] tr[data-conn]')].map(r =>
			[r.dataset.conn, r.cells[1].textContent]))`)
		if err != nil {
			return false
		}
		for _, f := range strings.Split(strings.Trim(got, "[]"), "],[") {
			parts := strings.Split(strings.Trim(f, "[]"), ",")
			if len(parts) == 2 && strings.Trim(parts[1], `"`) == c.LocalAddr().String() {
				id, err = strconv.ParseUint(strings.Trim(parts[0], `"`), 10, 64)
				return err == nil
			}
		}
		return false
	})
	return id
}

// holdConnection opens a client connection through front and reads the
// backend's greeting; it stays open until the test ends.
func holdConnection(t *testing.T, front string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", front, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// driveTraffic makes about 25 short connections a second through front,
// each sending a few KiB and reading them back, until ctx ends or two
// minutes pass.
func driveTraffic(ctx context.Context, front string) {
	end := time.After(2 * time.Minute)
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	msg := []byte(strings.Repeat("x", 4096))
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
		}
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}
}
