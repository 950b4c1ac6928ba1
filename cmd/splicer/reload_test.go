package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestReloadUnderLoad runs the daemon under 150 new connections a second
// and 50 checksummed streams while ten reloads come in by every way there
// is (the API, SIGHUP, `splicer reload`): backends and weights change, a
// frontend comes and one goes, the strategy changes, and one config is
// invalid. No connect may fail, nothing may be reset or corrupted, and the
// invalid config's problems come back from the API while the previous one
// serves on.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a 12-second load test")
	}
	dir := t.TempDir()
	e := []*echoServer{startEcho(t), startEcho(t), startEcho(t)}
	adminAddr, mainAddr, extraAddr, addedAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	head := baseConfig(t, dir, adminAddr, 30*time.Second)
	extra := frontendConfig("extra", extraAddr, "", be{"e0", e[0].addr, 1})
	added := frontendConfig("added", addedAddr, "", be{"e2", e[2].addr, 1})
	main := func(keys string, bs ...be) string { return frontendConfig("main", mainAddr, keys, bs...) }

	writeFile(t, path, head+main("", be{"e0", e[0].addr, 1}, be{"e1", e[1].addr, 1})+extra)
	p := startSplicer(t, testBinary(t), path, adminAddr)
	// The load: 150 new connections a second and 50 streams, for
	// at least 10 s (ten reloads a second apart).
	const rate, streams, minLoad = 150, 50, 10 * time.Second
	loadStart := time.Now()
	l := startLoad(t, mainAddr, rate, streams, 3000)

	ctx := context.Background()
	client := adminClient(t, dir, adminAddr)
	viaAPI := func() admin.ReloadResult {
		res, err := client.Reload(ctx)
		if err != nil && res.OK {
			t.Fatalf("reload through the API: %v", err)
		}
		return res
	}
	reloads := 0 // successful ones
	viaSignal := func() {
		reloads++
		p.cmd.Process.Signal(syscall.SIGHUP)
		want := fmt.Sprintf(`splicer_config_reloads_total{result="success"} %d`, reloads)
		testutil.WaitFor(t, 10*time.Second, want, func() bool { return strings.Contains(scrape(t, dir, adminAddr), want+"\n") })
	}
	viaCLI := func() {
		var out, errOut bytes.Buffer
		if code := run(ctx, []string{"reload", "-admin", adminAddr, "-token-file", adminTokenFile(dir)}, &out, &errOut); code != exitOK {
			t.Fatalf("splicer reload: exit %d: %s%s", code, out.String(), errOut.String())
		}
		if !strings.HasPrefix(out.String(), "reloaded "+path) {
			t.Errorf("splicer reload printed %q", out.String())
		}
	}
	ok := func(res admin.ReloadResult) {
		t.Helper()
		if !res.OK {
			t.Fatalf("reload refused: %+v", res.Problems)
		}
	}
	step := func() { time.Sleep(time.Second) } // let the load run between reloads

	step()
	// 1. weights, through the API.
	writeFile(t, path, head+main("", be{"e0", e[0].addr, 3}, be{"e1", e[1].addr, 1})+extra)
	ok(viaAPI())
	reloads++
	step()
	// 2. a backend more, on SIGHUP.
	writeFile(t, path, head+main("", be{"e0", e[0].addr, 3}, be{"e1", e[1].addr, 1}, be{"e2", e[2].addr, 1})+extra)
	viaSignal()
	step()
	// 3. a backend less (its streams drain), through `splicer reload`.
	writeFile(t, path, head+main("", be{"e0", e[0].addr, 3}, be{"e2", e[2].addr, 1})+extra)
	viaCLI()
	reloads++
	step()
	// 4. a frontend more.
	writeFile(t, path, head+main("", be{"e0", e[0].addr, 3}, be{"e2", e[2].addr, 1})+extra+added)
	ok(viaAPI())
	reloads++
	echoOnce(t, addedAddr)
	step()
	// 5. a frontend less: its address stops accepting.
	writeFile(t, path, head+main("", be{"e0", e[0].addr, 3}, be{"e2", e[2].addr, 1})+added)
	viaSignal()
	if c, err := net.DialTimeout("tcp", extraAddr, time.Second); err == nil {
		c.Close()
		t.Error("the removed frontend's address still accepts")
	}
	step()
	// 6. an invalid config: refused with its problems, nothing changes.
	writeFile(t, path, head+main(`strategy = "fastest"`, be{"e0", e[0].addr, 3}, be{"e2", e[2].addr, 300})+added)
	res := viaAPI()
	if res.OK || len(res.Problems) != 2 || !strings.Contains(res.Problems[0].Text, `strategy: must be one of`) ||
		res.Problems[1].Path != `frontend "main": backend[1].weight` || res.Problems[0].Line == 0 {
		t.Errorf("invalid config: %+v", res)
	}
	echoOnce(t, addedAddr)
	step()
	// 7. another strategy.
	writeFile(t, path, head+main(`strategy = "leastconn"`, be{"e0", e[0].addr, 3}, be{"e2", e[2].addr, 1})+added)
	viaCLI()
	reloads++
	step()
	// 8. the removed backend back, with another weight.
	writeFile(t, path, head+main(`strategy = "leastconn"`, be{"e0", e[0].addr, 3}, be{"e1", e[1].addr, 2}, be{"e2", e[2].addr, 1})+added)
	ok(viaAPI())
	reloads++
	step()
	// 9. frontend settings and the log level.
	writeFile(t, path, strings.Replace(head, "[admin]", "[log]\nlevel = \"warn\"\n\n[admin]", 1)+
		main("strategy = \"leastconn\"\nidle_timeout = \"10m\"", be{"e0", e[0].addr, 3}, be{"e1", e[1].addr, 2}, be{"e2", e[2].addr, 1})+added)
	viaSignal()
	step()
	// 10. weights once more, through the API. The log is at warn now: the
	// reload says nothing at info.
	writeFile(t, path, head+main(`strategy = "leastconn"`, be{"e0", e[0].addr, 1}, be{"e1", e[1].addr, 1}, be{"e2", e[2].addr, 1})+added)
	ok(viaAPI())
	step()
	if n := strings.Count(p.logs(), `"message":"configuration reloaded"`); n != 8 {
		t.Errorf("%d reloads logged at info, want 8: the ninth set the level to warn", n)
	}

	loaded := time.Since(loadStart) // the load stops in check
	l.check(t, streams)
	// The load ran as long and as fast as claimed: every short connection
	// made during the reloads succeeded (check), and there were at least
	// 80% of rate × duration of them (the ticker may lag on a loaded
	// machine, not by more).
	if loaded < minLoad {
		t.Errorf("the load ran %v, want at least %v", loaded, minLoad)
	}
	if n, want := l.short.Load(), int64(0.8*rate*loaded.Seconds()); n < want {
		t.Errorf("%d short connections in %v, want at least %d (80%% of %d/s)", n, loaded.Round(time.Millisecond), want, rate)
	}
	metrics := scrape(t, dir, adminAddr)
	for _, want := range []string{
		`splicer_config_reloads_total{result="success"} 9`,
		`splicer_config_reloads_total{result="failure"} 1`,
		`splicer_config_last_reload_successful 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	st := p.stats()
	if len(st.Frontends) != 2 || st.Frontends[0].Strategy != "leastconn" || len(st.Frontends[0].Backends) != 3 {
		t.Errorf("final stats: %+v", st.Frontends)
	}
}

// echoOnce checks that addr proxies one echo.
func echoOnce(t testing.TB, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "ping" {
		t.Fatalf("echo through %s: %q, %v", addr, got, err)
	}
}

// scrape returns the daemon's Prometheus metrics.
func scrape(t testing.TB, dir, adminAddr string) string {
	t.Helper()
	resp, err := adminGet(t, dir, adminAddr, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestReloadAPIRefusalShape checks the JSON of a refused reload as a
// client sees it: 422, every problem located.
func TestReloadAPIRefusalShape(t *testing.T) {
	dir := t.TempDir()
	e := startEcho(t)
	adminAddr := freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+frontendConfig("main", "127.0.0.1:0", "", be{"e0", e.addr, 1}))
	startSplicer(t, testBinary(t), path, adminAddr)
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+"[global]\nworkers = 3\n"+frontendConfig("main", "127.0.0.1:0", "", be{"e0", e.addr, 1}))
	tok, err := os.ReadFile(adminTokenFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+adminAddr+"/api/v1/reload", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res admin.ReloadResult
	json.NewDecoder(resp.Body).Decode(&res)
	// A second [global] table is a TOML error: one problem, with its line.
	if resp.StatusCode != http.StatusUnprocessableEntity || res.OK || len(res.Problems) != 1 || res.Problems[0].Line == 0 {
		t.Errorf("%s: %+v", resp.Status, res)
	}
	writeFile(t, path, strings.Replace(baseConfig(t, dir, adminAddr, time.Second), "workers = 2", "workers = 3", 1)+
		frontendConfig("main", "127.0.0.1:0", "", be{"e0", e.addr, 1}))
	res, err = adminClient(t, dir, adminAddr).Reload(context.Background())
	if err == nil || len(res.Problems) != 1 || res.Problems[0].Path != "global.workers" ||
		!strings.Contains(res.Problems[0].Message, `changed from 2 to 3, which a reload cannot apply; run "splicer upgrade"`) {
		t.Errorf("workers change: %+v, %v", res, err)
	}
}
