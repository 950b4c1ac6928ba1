package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildVulnDB(t *testing.T) {
	src := t.TempDir()
	osv := filepath.Join(src, "data", "osv")
	if err := os.MkdirAll(osv, 0o755); err != nil {
		t.Fatal(err)
	}
	entries := map[string]string{
		"GO-2022-1059": `{"id":"GO-2022-1059","modified":"0001-01-01T00:00:00Z","aliases":["CVE-2022-32149"],
			"affected":[{"package":{"name":"golang.org/x/text"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.3.8"}]}]}]}`,
		"GO-2023-0001": `{"id":"GO-2023-0001","modified":"2023-05-01T10:00:00Z",
			"affected":[{"package":{"name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.19.9"},{"introduced":"1.20.0"},{"fixed":"1.20.4"}]}]},
			            {"package":{"name":"golang.org/x/text"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`,
	}
	for id, e := range entries {
		if err := os.WriteFile(filepath.Join(osv, id+".json"), []byte(e), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)
	out := filepath.Join(t.TempDir(), "db")
	db, err := buildVulnDB(src, out, snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if db.Entries != 2 || db.Modules != 2 || !db.Modified.Equal(snapshot) {
		t.Errorf("db = %+v; want 2 entries, 2 modules, modified at the snapshot", db)
	}
	for id, e := range entries {
		got, err := os.ReadFile(filepath.Join(out, "ID", id+".json"))
		if err != nil || string(got) != e {
			t.Errorf("ID/%s.json = %q, %v; want the entry byte for byte", id, got, err)
		}
	}
	var mods []moduleMeta
	readJSON(t, filepath.Join(out, "index", "modules.json"), &mods)
	want := `[{golang.org/x/text [{GO-2022-1059 2026-11-05 23:49:57 +0000 UTC 0.3.8} {GO-2023-0001 2023-05-01 10:00:00 +0000 UTC }]} {stdlib [{GO-2023-0001 2023-05-01 10:00:00 +0000 UTC 1.20.4}]}]`
	if got := fmtJSON(mods); got != want {
		t.Errorf("modules.json = %s\nwant            %s", got, want)
	}
	var vulns []vulnMeta
	readJSON(t, filepath.Join(out, "index", "vulns.json"), &vulns)
	if len(vulns) != 2 || vulns[0].ID != "GO-2022-1059" || vulns[0].Aliases[0] != "CVE-2022-32149" || !vulns[1].Modified.Equal(time.Date(2023, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("vulns.json = %+v", vulns)
	}
	var meta dbMeta
	readJSON(t, filepath.Join(out, "index", "db.json"), &meta)
	if !meta.Modified.Equal(snapshot) {
		t.Errorf("db.json modified = %v; want %v", meta.Modified, snapshot)
	}
	again, err := readVulnDB(out)
	if err != nil || again.Entries != 2 || again.Modules != 2 || !again.Modified.Equal(snapshot) {
		t.Errorf("readVulnDB = %+v, %v", again, err)
	}

	// A file named for another entry is refused, and the database built
	// before stays whole.
	if err := os.WriteFile(filepath.Join(osv, "GO-2024-0001.json"), []byte(`{"id":"GO-2024-9999"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := buildVulnDB(src, out, snapshot); err == nil || !strings.Contains(err.Error(), "GO-2024-9999") {
		t.Errorf("a misnamed entry: %v; want an error naming it", err)
	}
	if db, err := readVulnDB(out); err != nil || db.Entries != 2 {
		t.Errorf("after a failed build: %+v, %v; want the previous database", db, err)
	}
	if _, err := buildVulnDB(t.TempDir(), out, snapshot); err == nil {
		t.Error("a module without data/osv built a database")
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func fmtJSON(mods []moduleMeta) string {
	var parts []string
	for _, m := range mods {
		var vs []string
		for _, v := range m.Vulns {
			vs = append(vs, "{"+v.ID+" "+v.Modified.String()+" "+v.Fixed+"}")
		}
		parts = append(parts, "{"+m.Path+" ["+strings.Join(vs, " ")+"]}")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestLatestFixed(t *testing.T) {
	type ev = struct {
		Introduced string `json:"introduced,omitempty"`
		Fixed      string `json:"fixed,omitempty"`
	}
	r := func(events ...ev) osvRange { return osvRange{Type: "SEMVER", Events: events} }
	for _, tc := range []struct {
		name   string
		ranges []osvRange
		want   string
	}{
		{"none", nil, ""},
		{"no fix", []osvRange{r(ev{Introduced: "0"})}, ""},
		{"one fix", []osvRange{r(ev{Introduced: "0"}, ev{Fixed: "1.0.4"})}, "1.0.4"},
		{"re-introduced after the fix", []osvRange{r(ev{Introduced: "0"}, ev{Fixed: "1.0.4"}, ev{Introduced: "1.1.2"})}, ""},
		{"latest of several", []osvRange{r(ev{Introduced: "0"}, ev{Fixed: "1.0.4"}, ev{Introduced: "1.1.2"}, ev{Fixed: "1.1.7"})}, "1.1.7"},
		{"across ranges", []osvRange{r(ev{Introduced: "0"}, ev{Fixed: "1.2.0"}), r(ev{Introduced: "0"}, ev{Fixed: "1.10.0"})}, "1.10.0"},
		{"pre-release fix", []osvRange{r(ev{Introduced: "0"}, ev{Fixed: "1.21.0-0"})}, "1.21.0-0"},
		{"not semver", []osvRange{{Type: "GIT"}}, ""},
	} {
		if got := latestFixed(tc.ranges); got != tc.want {
			t.Errorf("%s: latestFixed = %q; want %q", tc.name, got, tc.want)
		}
	}
}

func TestSemverCompare(t *testing.T) {
	// Each version precedes the next (semver.org's precedence example,
	// then pseudo-versions and releases).
	order := []string{"", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
		"1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0-0.20230101000000-abcdef", "2.0.0"}
	for i := range order {
		for j := range order {
			want := compareInt(i, j)
			if got := semverCompare(order[i], order[j]); got != want {
				t.Errorf("semverCompare(%q, %q) = %d; want %d", order[i], order[j], got, want)
			}
		}
	}
	if semverCompare("1.0.0+build", "1.0.0") != 0 {
		t.Error("build metadata changed the precedence")
	}
	for _, bad := range []string{"1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-a..b", "x.y.z"} {
		if _, ok := parseSemver(bad); ok {
			t.Errorf("parseSemver(%q) accepted it", bad)
		}
	}
}
