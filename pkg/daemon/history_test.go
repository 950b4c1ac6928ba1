package daemon

import (
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestHistoryFromCounters sends connections with known byte counts through
// the daemon while it samples, then reads GET /api/v1/history: each rate
// times the time between samples adds up to the counters' totals, to the
// connection and (at float32 precision) to the byte, for the frontend and
// for its backend; the refused connections of a backend that went away
// show as its connect failures; the stats carry the latest and peak rates.
func TestHistoryFromCounters(t *testing.T) {
	back := startDemo(t)
	users, tokens := writeUsers(t, "viewer")
	cfg, err := config.New().AdminListen("127.0.0.1:0").AdminUsersFile(users).Frontend("t").Listen("127.0.0.1:0").
		Retries(0).Backend(back.Addr().String(), 1).HealthCheck("none").HealthPassiveFall(0).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := frontAddr(t, d)
	base := "http://" + d.adminLn.Addr().String()
	viewer := tokens["viewer"]

	greetingLen := len("hello from demo backend " + back.Addr().String() + "\n")
	const conns = 30
	sent := 0
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := strings.Repeat("x", 1000*(i%3+1))
		sent += len(msg)
		c.Write([]byte(msg))
		c.(*net.TCPConn).CloseWrite()
		if got, err := io.ReadAll(c); err != nil || len(got) != greetingLen+len(msg) {
			t.Fatalf("conn %d: %d bytes, %v", i, len(got), err)
		}
		c.Close()
		if i%10 == 9 {
			time.Sleep(300 * time.Millisecond) // spread over samples
		}
	}
	// The backend goes: the next clients' connects are refused.
	back.Close()
	const refused = 3
	for i := 0; i < refused; i++ {
		if c, err := net.Dial("tcp", front); err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c)
			c.Close()
		}
	}
	var h stats.History
	testutil.WaitFor(t, 20*time.Second, "every connection in the history, then a quiet second", func() bool {
		h = getHistory(t, base+"/api/v1/history?frontend=t", viewer)
		if len(h.Frontends) != 1 || len(h.Frontends[0].Backends) != 1 {
			return false
		}
		c := h.Frontends[0].Backends[0].Series.Conns
		return integrate(h, h.Frontends[0].Series.Conns, 0) >= conns+refused-0.01 &&
			integrate(h, h.Frontends[0].Backends[0].Series.Errors["refused"], 0) >= refused-0.01 && c[len(c)-1] == 0
	})
	fe := h.Frontends[0]
	be := fe.Backends[0]
	if fe.Name != "t" || fe.Protocol != "tcp" || len(fe.Backends) != 1 || be.Name != back.Addr().String() {
		t.Fatalf("history of %q (%s) with backends %+v", fe.Name, fe.Protocol, fe.Backends)
	}
	for _, tc := range []struct {
		name string
		col  stats.Column
		s    stats.Series
		want float64
	}{
		{"frontend connections", fe.Series.Conns, fe.Series, conns + refused},
		{"frontend bytes in", fe.Series.BytesIn, fe.Series, float64(sent)},
		{"frontend bytes out", fe.Series.BytesOut, fe.Series, float64(sent + conns*greetingLen)},
		// The backend was up and refused the connects: every try failed,
		// which is not "no backend".
		{"frontend refusals (connect failed)", fe.Series.Errors["connect_failed"], fe.Series, refused},
		{"frontend refusals (no backend)", fe.Series.Errors["no_backend"], fe.Series, 0},
		{"backend connections", be.Series.Conns, be.Series, conns + refused},
		{"backend bytes in", be.Series.BytesIn, be.Series, float64(sent)},
		{"backend refused connects", be.Series.Errors["refused"], be.Series, refused},
		{"backend broken connections", be.Series.Errors["broken"], be.Series, 0},
	} {
		got := integrate(h, tc.col, tc.s.Start)
		if math.Abs(got-tc.want) > tc.want*1e-6+1e-3 {
			t.Errorf("%s: the rates add up to %v, want %v", tc.name, got, tc.want)
		}
	}
	// Connect times exist for seconds with connects, and are null where
	// none was made (the last seconds, once traffic stopped).
	withP99 := 0
	for _, v := range be.Series.ConnectP99 {
		if !math.IsNaN(float64(v)) {
			withP99++
			if v <= 0 || v > 1 {
				t.Errorf("connect p99 %v s", v)
			}
		}
	}
	if withP99 == 0 || !math.IsNaN(float64(be.Series.ConnectP99[len(be.Series.ConnectP99)-1])) {
		t.Errorf("connect p99 column %v", be.Series.ConnectP99)
	}
	st := getStats(t, base, viewer)
	r := st.Frontends[0].Rates
	if r == nil || r.Peak.Conns <= 0 || r.Peak.BytesIn <= 0 || r.Window < 1 || st.Frontends[0].Backends[0].Rates == nil {
		t.Errorf("stats rates %+v", r)
	}
	if resp := getRaw(t, base+"/api/v1/history?frontend=nope", viewer); resp != http.StatusNotFound {
		t.Errorf("unknown frontend: %d", resp)
	}
}

// integrate adds up rate × seconds of the interval each sample covers.
func integrate(h stats.History, col stats.Column, start int) float64 {
	total := 0.0
	for j, v := range col {
		i := start + j
		prev := h.From
		if i > 0 {
			prev = h.Times[i-1]
		}
		if !math.IsNaN(float64(v)) {
			total += float64(v) * float64(h.Times[i]-prev) / 1000
		}
	}
	return total
}

func getHistory(t *testing.T, url, token string) stats.History {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h stats.History
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func getRaw(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
