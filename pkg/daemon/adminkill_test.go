package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// patternByte is byte i of the download the streaming backend sends.
func patternByte(i int) byte { return byte(i % 251) }

// TestAdminKillMidDownloadResets (issue 13, item 2): a download killed
// through the HTTP admin API (DELETE /api/v1/connections/{id}) while bytes
// are still in flight ends with a reset on both sides, never a FIN that
// would make the truncated stream look complete: the client's read fails
// with ECONNRESET after an intact prefix of the stream, the backend's read
// fails with ECONNRESET, and the connection is counted as admin_kill on
// the frontend and on the backend.
func TestAdminKillMidDownloadResets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	backendErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		// An endless download (bounded: 256 MiB), until the write fails:
		// the write blocked on the full socket is the first to learn how
		// the connection ended.
		buf := make([]byte, 64<<10)
		for off := 0; off < 256<<20; off += len(buf) {
			for i := range buf {
				buf[i] = patternByte(off + i)
			}
			if _, err := c.Write(buf); err != nil {
				backendErr <- err
				return
			}
		}
		backendErr <- nil
	}()
	users, tokens := writeUsers(t, "operator")
	cfg, err := config.New().AdminListen("127.0.0.1:0").AdminUsersFile(users).
		Frontend("t").Listen("127.0.0.1:0").Backend(ln.Addr().String(), 1).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	c, err := net.DialTimeout("tcp", frontAddr(t, d), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	// Mid-stream: 1 MiB read, and the client stops reading until the
	// relay's buffers and the sockets' queues hold bytes not delivered.
	got := make([]byte, 1<<20)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	var id uint64
	testutil.WaitFor(t, 5*time.Second, "the download stalled on the client", func() bool {
		cs, _ := d.srv.Connections("t", 0, 10)
		if len(cs) != 1 {
			return false
		}
		id = cs[0].ID
		return cs[0].BytesOut > uint64(len(got))+256<<10
	})

	req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("http://%s/api/v1/connections/%d", d.adminLn.Addr(), id), nil)
	req.Header.Set("Authorization", "Bearer "+tokens["operator"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE connection %d: HTTP %d, want 204", id, resp.StatusCode)
	}

	// What arrived is the stream's prefix, then a reset, not an EOF.
	n := len(got)
	buf := make([]byte, 64<<10)
	for {
		m, err := c.Read(buf)
		for i := range buf[:m] {
			if buf[i] != patternByte(n+i) {
				t.Fatalf("byte %d of the download is %d, want %d", n+i, buf[i], patternByte(n+i))
			}
		}
		n += m
		if err != nil {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the client's read after %d bytes: %v, want ECONNRESET", n, err)
			}
			break
		}
	}
	select {
	case err := <-backendErr:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("the backend's write: %v, want ECONNRESET", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the backend's connection was not ended")
	}
	var closed [l4.NumCauses]uint64
	testutil.WaitFor(t, 5*time.Second, "the kill counted", func() bool {
		fc, _ := d.srv.Counters("t")
		closed = fc.Closed
		return closed[l4.CauseAdminKill] > 0
	})
	if want := ([l4.NumCauses]uint64{l4.CauseAdminKill: 1}); closed != want {
		t.Errorf("frontend t ended %v (by cause index), want exactly one admin_kill", closed)
	}
	if n := d.srv.Backends("t")[0].Stats().Closed[l4.CauseAdminKill]; n != 1 {
		t.Errorf("the backend counted %d admin_kill ends, want 1", n)
	}
}
