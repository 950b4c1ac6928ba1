package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

const wantTable = `splicer 1.2.3  up 1h2m5s  pipes 3/4096  fds 42

NAME          STATE  HEALTH  WEIGHT   ACTIVE  TOTAL  BYTES IN  BYTES OUT  CONNECT P50  P99     FAILED  RESETS
pg            -      -       -        2       10     1000      5000       -            -       -       -
  a           ready  up      100      2       7      700       3500       0.50ms       1.00ms  3       1
  [::1]:5433  drain  DOWN    50 (10)  0       3      300       1500       0.00ms       0.00ms  0       0
cache         -      -       -        0       0      0         0          -            -       -       -
`

// TestRunStats fetches the stats over HTTP, so every figure the table shows
// must survive the JSON round trip.
func TestRunStats(t *testing.T) {
	tests := []struct {
		name string
		src  *fakeSource
		want string
	}{
		{"tcp", newFakeSource(), wantTable},
		{"tcp and udp", newFakeSource().withUDP(), wantTable + wantUDPTable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := startTestServer(t, tc.src)
			var out strings.Builder
			if err := RunStats(context.Background(), []string{"-admin", addr, "-token-file", tokenFile(t, viewerToken)}, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("table:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestRunBackend(t *testing.T) {
	tests := []struct {
		name      string
		args      []string // -admin ADDR is prepended
		wantOut   string
		wantErr   string
		wantUsage bool
		wantState string // of pg/[::1]:5433 afterwards
		wantWt    int
	}{
		{"drain", []string{"drain", "pg", "[::1]:5433"}, "pg/[::1]:5433: state drain\n", "", false, "drain", 50},
		{"ready", []string{"ready", "pg", "[::1]:5433"}, "pg/[::1]:5433: state ready\n", "", false, "ready", 50},
		{"maint", []string{"maint", "pg", "[::1]:5433"}, "pg/[::1]:5433: state maint\n", "", false, "maint", 50},
		{"weight", []string{"weight", "pg", "[::1]:5433", "9"}, "pg/[::1]:5433: weight 9\n", "", false, "drain", 9},
		{"weight out of range", []string{"weight", "pg", "[::1]:5433", "300"}, "",
			`admin PUT /api/v1/frontends/pg/backends/%5B::1%5D:5433/weight: field "weight": 300 is out of range 1..256 (HTTP 400)`,
			false, "drain", 50},
		{"unknown backend", []string{"drain", "pg", "nope"}, "",
			`admin POST /api/v1/frontends/pg/backends/nope/state: frontend "pg" has no backend "nope": not found (HTTP 404)`,
			false, "drain", 50},
		{"weight not a number", []string{"weight", "pg", "[::1]:5433", "x"}, "", `usage: weight "x" is not a number`, true, "drain", 50},
		{"missing backend", []string{"drain", "pg"}, "", "", true, "drain", 50},
		{"unknown action", []string{"stop", "pg", "a"}, "", "", true, "drain", 50},
		{"no action", nil, "", "", true, "drain", 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			addr := startTestServer(t, src)
			var out strings.Builder
			err := RunBackend(context.Background(), append([]string{"-admin", addr, "-token-file", tokenFile(t, operatorToken)}, tc.args...), &out)
			switch {
			case tc.wantUsage:
				if !errors.Is(err, ErrUsage) {
					t.Errorf("error %v, want ErrUsage", err)
				}
				if tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
			case tc.wantErr != "":
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("error %v", err)
			}
			if out.String() != tc.wantOut {
				t.Errorf("output %q, want %q", out.String(), tc.wantOut)
			}
			b := src.Stats().Frontends[0].Backends[1]
			if b.State != tc.wantState || b.Weight != tc.wantWt {
				t.Errorf("backend afterwards %s weight %d, want %s weight %d", b.State, b.Weight, tc.wantState, tc.wantWt)
			}
		})
	}
}

func TestClientAPIError(t *testing.T) {
	addr := startTestServer(t, newFakeSource())
	c, err := NewClientWith(addr, ClientOptions{Token: operatorToken})
	if err != nil {
		t.Fatal(err)
	}
	err = c.SetState(context.Background(), "nope", "a", "drain")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Message != `no frontend "nope": not found` {
		t.Errorf("error %#v, want APIError 404", err)
	}
}

func TestFlagAfterAction(t *testing.T) {
	src := newFakeSource()
	addr := startTestServer(t, src)
	var out strings.Builder
	if err := RunBackend(context.Background(), []string{"drain", "-admin", addr, "-token-file", tokenFile(t, operatorToken), "pg", "a"}, &out); err != nil {
		t.Fatal(err)
	}
	if st := src.Stats().Frontends[0].Backends[0].State; st != "drain" {
		t.Errorf("state %q, want drain", st)
	}
}
