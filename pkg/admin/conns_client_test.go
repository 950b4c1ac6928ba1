package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestRunConns lists the fake source's connections (all, one frontend,
// paged by a small limit, as JSON) and kills one, which resets both peers
// in the daemon; the fake only forgets it.
func TestRunConns(t *testing.T) {
	src := newFakeSource()
	addr := startTestServer(t, src)
	viewer, operator := tokenFile(t, viewerToken), tokenFile(t, operatorToken)
	run := func(token string, args ...string) (string, error) {
		var out strings.Builder
		err := RunConns(context.Background(), append(args, "-admin", addr, "-token-file", token), &out)
		return out.String(), err
	}
	all := `ID  FRONTEND  CLIENT           BACKEND     STATE       AGE  BYTES IN  BYTES OUT
3   pg        127.0.0.1:40001  a           relaying    1s   10        20
5   cache     127.0.0.1:40002  -           connecting  0s   0         0
8   pg        127.0.0.1:40003  a           relaying    0s   30        40
9   pg        [::1]:40004      [::1]:5433  closing     2s   50        60
`
	if got, err := run(viewer); err != nil || got != all {
		t.Errorf("all: %v\n%s\nwant:\n%s", err, got, all)
	}
	if got, err := run(viewer, "-frontend", "pg", "-limit", "2"); err != nil || got != `ID  FRONTEND  CLIENT           BACKEND  STATE     AGE  BYTES IN  BYTES OUT
3   pg        127.0.0.1:40001  a        relaying  1s   10        20
8   pg        127.0.0.1:40003  a        relaying  0s   30        40
(2 of 3 shown; -limit 0 lists all)
` {
		t.Errorf("one frontend, limited: %v\n%s", err, got)
	}
	got, err := run(viewer, "-json", "-limit", "0")
	var page ConnPage
	if err != nil || json.Unmarshal([]byte(got), &page) != nil || page.Total != 4 || len(page.Connections) != 4 || page.Connections[3].ID != 9 {
		t.Errorf("json: %v\n%s", err, got)
	}

	if _, err := run(viewer, "kill", "8"); err == nil || !strings.Contains(err.Error(), "role viewer lacks permission connection.kill (HTTP 403)") {
		t.Errorf("a viewer's kill: %v", err)
	}
	if got, err := run(operator, "kill", "8", "9"); err != nil || got != "connection 8 closed\nconnection 9 closed\n" {
		t.Errorf("kill: %v %q", err, got)
	}
	if _, total, _ := src.Connections("", 0, 10); total != 2 {
		t.Errorf("%d connections left, want 2", total)
	}
	if _, err := run(operator, "kill", "8"); err == nil || !strings.Contains(err.Error(), "(HTTP 404)") {
		t.Errorf("a second kill: %v", err)
	}
	for _, args := range [][]string{{"kill"}, {"kill", "x"}, {"kill", "0"}, {"stop", "3"}, {"-limit", "-1"}} {
		if _, err := run(operator, args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestAllConnectionsPages reads more connections than one page holds.
func TestAllConnectionsPages(t *testing.T) {
	src := newFakeSource()
	for i := uint64(10); i < 10+2*MaxConnLimit+5; i++ {
		src.conns = append(src.conns, src.conns[0])
		src.conns[len(src.conns)-1].ID = i
	}
	c, _ := NewClientWith(startTestServer(t, src), ClientOptions{Token: viewerToken})
	conns, total, err := c.allConnections(context.Background(), "", 0)
	if err != nil || total != len(src.conns) || len(conns) != total {
		t.Fatalf("%d of %d, %v", len(conns), total, err)
	}
	for i := 1; i < len(conns); i++ {
		if conns[i].ID <= conns[i-1].ID {
			t.Fatalf("out of order at %d: %d after %d", i, conns[i].ID, conns[i-1].ID)
		}
	}
	if conns, _, _ := c.allConnections(context.Background(), "", MaxConnLimit+3); len(conns) != MaxConnLimit+3 {
		t.Errorf("limited to %d: got %d", MaxConnLimit+3, len(conns))
	}
}
