package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
)

// TestRunStats fetches the stats over HTTP, so every figure the table shows
// must survive the JSON round trip. The flags may come in any order, and
// the address from $SPLICER_ADMIN.
func TestRunStats(t *testing.T) {
	src := newFakeSource().withUDP()
	src.st.Frontends[0].Backends[0].Health.LastChange = time.Time{} // SINCE would depend on the clock
	addr := startTestServer(t, src)
	want := wantHeader + strings.Replace(wantTCPTable, "59m5s", "-    ", 1) + wantUDPTable
	token := tokenFile(t, viewerToken)
	for _, args := range [][]string{
		{"-admin", addr, "-token-file", token},
		{"-token-file", token, "-admin", addr},
	} {
		var out strings.Builder
		if err := RunStats(context.Background(), args, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("%v: table:\n%s\nwant:\n%s", args, out.String(), want)
		}
	}
	t.Setenv(AdminEnv, addr)
	t.Setenv(TokenFileEnv, token)
	var out strings.Builder
	if err := RunStats(context.Background(), nil, &out); err != nil || out.String() != want {
		t.Errorf("from the environment: %v\n%s", err, out.String())
	}
	if err := RunStats(context.Background(), []string{"extra"}, &out); !errors.Is(err, ErrUsage) {
		t.Errorf("an argument: %v", err)
	}
}

// TestRunStatsJSON checks that -json prints the API's document: decoded,
// it equals what GET /api/v1/stats answers.
func TestRunStatsJSON(t *testing.T) {
	src := newFakeSource().withUDP()
	addr := startTestServer(t, src)
	var out strings.Builder
	if err := RunStats(context.Background(), []string{"-json", "-admin", addr, "-token-file", tokenFile(t, viewerToken)}, &out); err != nil {
		t.Fatal(err)
	}
	var got, want stats.Stats
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("%v in:\n%s", err, out.String())
	}
	c, _ := NewClientWith(addr, ClientOptions{Token: viewerToken})
	want, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || got.Frontends[0].Rates == nil || got.Frontends[0].Rates.Peak.Conns != 140 {
		t.Errorf("stats -json:\n%+v\nAPI:\n%+v", got, want)
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

// TestFlagsAnywhere puts the flags before, between and after the
// arguments, and "--" before an argument that looks like a flag.
func TestFlagsAnywhere(t *testing.T) {
	src := newFakeSource()
	addr := startTestServer(t, src)
	token := tokenFile(t, operatorToken)
	for _, args := range [][]string{
		{"drain", "-admin", addr, "-token-file", token, "pg", "a"},
		{"drain", "pg", "a", "-admin", addr, "-token-file", token},
		{"-admin", addr, "drain", "pg", "-token-file", token, "a"},
		{"-admin=" + addr, "-token-file", token, "--", "drain", "pg", "a"},
	} {
		src.SetState("pg", "a", "ready")
		var out strings.Builder
		if err := RunBackend(context.Background(), args, &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if st := src.Stats().Frontends[0].Backends[0].State; st != "drain" || out.String() != "pg/a: state drain\n" {
			t.Errorf("%v: state %q, output %q", args, st, out.String())
		}
	}
	fs, _ := clientFlags("x")
	got, err := parseArgs(fs, []string{"a", "--", "-b", "c"})
	if err != nil || strings.Join(got, " ") != "a -b c" {
		t.Errorf("after --: %q %v", got, err)
	}
	if _, err := parseArgs(fs, []string{"a", "-nope"}); err == nil {
		t.Error("an unknown flag after an argument was accepted")
	}
}
