package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestStatsPeakShortConnections: after five short connections, one at a
// time, `splicer stats` prints under PEAK what `splicer stats -json` says
// in "peak" (1) for the frontend and its backend; the history's
// once-a-second samples fall between such connections and saw none.
func TestStatsPeakShortConnections(t *testing.T) {
	dir := t.TempDir()
	e0 := startEcho(t)
	adminAddr := freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	writeFile(t, path, baseConfig(t, dir, adminAddr, time.Second)+frontendConfig("main", "127.0.0.1:0", "", be{"e0", e0.addr, 1}))
	p := startSplicer(t, testBinary(t), path, adminAddr)
	front := frontendAddr(t, p, "main")
	c := adminClient(t, dir, adminAddr)
	for i := range 5 {
		conn, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte("ping"))
		conn.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, conn)
		conn.Close()
		// One at a time: the next once splicer has closed this one.
		testutil.WaitFor(t, 10*time.Second, "the connection ended", func() bool {
			st, err := c.Stats(context.Background())
			return err == nil && st.Frontends[0].Total == uint64(i+1) && st.Frontends[0].Active == 0 && st.Frontends[0].Rates != nil
		})
	}
	code, out, errOut := runCLI(context.Background(), "stats", "-json", "-admin", adminAddr, "-token-file", adminTokenFile(dir))
	if code != exitOK {
		t.Fatalf("stats -json: %d %s", code, errOut)
	}
	var st stats.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats -json: %v\n%s", err, out)
	}
	fe := st.Frontends[0]
	if fe.Peak != 1 || fe.Backends[0].Peak != 1 {
		t.Fatalf("peaks in the JSON: frontend %d, backend %d, want 1 and 1", fe.Peak, fe.Backends[0].Peak)
	}
	code, out, errOut = runCLI(context.Background(), "stats", "-admin", adminAddr, "-token-file", adminTokenFile(dir))
	if code != exitOK {
		t.Fatalf("stats: %d %s", code, errOut)
	}
	for name, want := range map[string]int64{"main": fe.Peak, "e0": fe.Backends[0].Peak} {
		header, row := tableRow(t, out, name)
		if got := row[slicesIndex(header, "PEAK")]; got != strconv.FormatInt(want, 10) {
			t.Errorf("%s: PEAK %q, want %d as in the JSON:\n%s", name, got, want, out)
		}
	}
}
