package daemon

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// logLines reads a connection log file: the connection ids of its lines.
func logLines(t *testing.T, path string) []uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			ID      uint64 `json:"connection_id"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Message != "connection closed" {
			t.Fatalf("%s: line %q (%v)", path, sc.Text(), err)
		}
		ids = append(ids, line.ID)
	}
	return ids
}

// closedTotal is the number of connections frontend t has ended.
func closedTotal(d *Daemon) uint64 {
	c, _ := d.srv.Counters("t")
	var n uint64
	for _, v := range c.Closed {
		n += v
	}
	return n
}

// Log rotation as logrotate does it: the file is renamed under traffic, a
// signal follows (SIGUSR1, or SIGHUP, which reloads too), and from then on
// lines go to a new file at the path. Every connection has its line in one
// of the two files, exactly once.
func TestConnectionLogRotation(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			back := startDemo(t)
			path := filepath.Join(t.TempDir(), "connections.log")
			build := func() (*config.Config, error) {
				return config.New().AdminListen("").ConnectionsFile(path).
					Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").
					LogConnections(config.LogAll).Build()
			}
			cfg, err := build()
			if err != nil {
				t.Fatal(err)
			}
			sigs := make(chan os.Signal, 1)
			d := runWith(t, cfg, Options{Signals: sigs, Load: build})
			front := frontAddr(t, d)
			served, stop := loadTest(t, front)
			testutil.WaitFor(t, 10*time.Second, "100 clients served before the rotation", func() bool { return served() >= 100 })

			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			sigs <- sig
			// Connections of this test's own until one has its line in
			// the new file: the one writer goroutine has then finished
			// its last write to the old file, which grows no more.
			var mine []string
			testutil.WaitFor(t, 10*time.Second, "a line in the new file", func() bool {
				mine = append(mine, oneConnection(t, front))
				b, _ := os.ReadFile(path)
				for _, client := range mine {
					if strings.Contains(string(b), `"client":"`+client+`"`) {
						return true
					}
				}
				return false
			})
			old, err := os.Stat(path + ".1")
			if err != nil {
				t.Fatal(err)
			}
			after := served()
			testutil.WaitFor(t, 10*time.Second, "100 more clients served", func() bool { return served() >= after+100 })
			ok, failures := stop()
			if len(failures) != 0 {
				t.Fatalf("%d clients failed: %v", len(failures), failures)
			}
			testutil.WaitFor(t, 10*time.Second, "every line written", func() bool {
				return d.srv.ActiveConnections() == 0 && d.srv.ConnLogCounters().Lines == closedTotal(d)
			})
			if now, _ := os.Stat(path + ".1"); now.Size() != old.Size() {
				t.Errorf("the renamed file grew from %d to %d bytes after the reopen", old.Size(), now.Size())
			}
			before, fresh := logLines(t, path+".1"), logLines(t, path)
			seen := make(map[uint64]bool)
			for _, id := range append(before, fresh...) {
				if seen[id] {
					t.Errorf("connection %d logged twice", id)
				}
				seen[id] = true
			}
			total := closedTotal(d)
			if uint64(len(seen)) != total || len(before) == 0 || len(fresh) == 0 {
				t.Errorf("%d lines in the renamed file and %d in the new one, for %d connections (%d by the load)",
					len(before), len(fresh), total, ok)
			}
			if c := d.srv.ConnLogCounters(); c.DroppedFull+c.DroppedWrite != 0 {
				t.Errorf("lines dropped: %+v", c)
			}
		})
	}
}

// oneConnection makes one connection to front, reads the demo backend's
// greeting and closes; it returns the client's address.
func oneConnection(t *testing.T, front string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", front, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return c.LocalAddr().String()
}
