package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The Go vulnerability database, pinned: the golang.org/x/vulndb module at
// this version, as the Go module proxy serves it. Its data/osv directory
// holds every report as an OSV entry; vulnDB turns them into the database
// layout govulncheck reads with -db file://DIR, offline. Refresh by
// setting a newer pseudo-version (`go list -m golang.org/x/vulndb@master`
// names the newest) in the Makefile's VULNDB.
const defaultVulnDB = "golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018"

// osvEntry is the part of an OSV entry the indexes need.
type osvEntry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
}

// osvRange is one range of versions an OSV entry affects.
type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced,omitempty"`
		Fixed      string `json:"fixed,omitempty"`
	} `json:"events"`
}

// The index files of the v1 database schema (x/vulndb's
// internal/database, which x/vuln's client reads).
type (
	dbMeta struct {
		Modified time.Time `json:"modified"`
	}
	moduleMeta struct {
		Path  string       `json:"path"`
		Vulns []moduleVuln `json:"vulns"`
	}
	// moduleVuln.Fixed is the version from which no version is affected,
	// if there is one: the client skips the entry for a version at or
	// above it without reading it.
	moduleVuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	vulnMeta struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Aliases  []string  `json:"aliases,omitempty"`
	}
)

// vulnDB describes a database built by buildVulnDB.
type vulnDB struct {
	Dir      string    // the database, for -db file://Dir
	Source   string    // module@version it was built from
	Entries  int       // OSV entries
	Modules  int       // modules with at least one entry ("stdlib" and "toolchain" included)
	Modified time.Time // the newest entry's modification time
}

// buildVulnDB writes the database of the OSV entries in src/data/osv (an
// extracted golang.org/x/vulndb module) into out: ID/<id>.json, each entry
// byte for byte, and the index/db.json, index/modules.json and
// index/vulns.json indexes. The module's entries carry a zero "modified"
// time (x/vulndb's generator takes it from the git history, which a module
// zip lacks); the indexes use snapshot, the module version's time, in its
// place. out is replaced as a whole, through a temporary directory beside
// it, so a failed build leaves no half database behind.
func buildVulnDB(src, out string, snapshot time.Time) (vulnDB, error) {
	db := vulnDB{Dir: out}
	files, err := filepath.Glob(filepath.Join(src, "data", "osv", "*.json"))
	if err != nil {
		return db, err
	}
	if len(files) == 0 {
		return db, fmt.Errorf("no OSV entries in %s", filepath.Join(src, "data", "osv"))
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return db, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".vulndb-")
	if err != nil {
		return db, err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"ID", "index"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			return db, err
		}
	}
	modules := map[string]*moduleMeta{}
	var vulns []vulnMeta
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return db, err
		}
		var e osvEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return db, fmt.Errorf("%s: %w", f, err)
		}
		if e.ID == "" || filepath.Base(f) != e.ID+".json" {
			return db, fmt.Errorf("%s: holds entry %q; each file must be named for its entry's id", f, e.ID)
		}
		modified := e.Modified
		if modified.IsZero() {
			modified = snapshot
		}
		if modified.After(db.Modified) {
			db.Modified = modified
		}
		vulns = append(vulns, vulnMeta{ID: e.ID, Modified: modified, Aliases: e.Aliases})
		for _, a := range e.Affected {
			path := a.Package.Name
			if path == "" {
				continue
			}
			m := modules[path]
			if m == nil {
				m = &moduleMeta{Path: path}
				modules[path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: modified, Fixed: latestFixed(a.Ranges)})
		}
		if err := os.WriteFile(filepath.Join(tmp, "ID", e.ID+".json"), raw, 0o644); err != nil {
			return db, err
		}
	}
	paths := make([]string, 0, len(modules))
	for p := range modules {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	mods := make([]*moduleMeta, len(paths))
	for i, p := range paths {
		mods[i] = modules[p]
		sort.Slice(mods[i].Vulns, func(a, b int) bool { return mods[i].Vulns[a].ID < mods[i].Vulns[b].ID })
	}
	sort.Slice(vulns, func(a, b int) bool { return vulns[a].ID < vulns[b].ID })
	for name, v := range map[string]any{"db.json": dbMeta{Modified: db.Modified}, "modules.json": mods, "vulns.json": vulns} {
		b, err := json.Marshal(v)
		if err != nil {
			return db, err
		}
		if err := os.WriteFile(filepath.Join(tmp, "index", name), b, 0o644); err != nil {
			return db, err
		}
	}
	if err := os.RemoveAll(out); err != nil {
		return db, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return db, err
	}
	db.Entries, db.Modules = len(vulns), len(mods)
	return db, nil
}

// downloadModule fetches module@version into the module cache through the
// Go module proxy (checked against the checksum database as for any
// module) and returns its directory and its version's time. It runs
// outside the module, so go.mod and go.sum stay as they are.
func downloadModule(ctx context.Context, modVersion string) (dir string, at time.Time, err error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modVersion)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct {
		Dir, Info, Error string
	}
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", time.Time{}, fmt.Errorf("go mod download %s: %s", modVersion, info.Error)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("go mod download %s: %v: %s", modVersion, err, strings.TrimSpace(stderr.String()))
	}
	raw, err := os.ReadFile(info.Info)
	if err != nil {
		return "", time.Time{}, err
	}
	var v struct{ Time time.Time }
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", time.Time{}, fmt.Errorf("%s: %w", info.Info, err)
	}
	return info.Dir, v.Time, nil
}

// ensureVulnDB builds the database of modVersion under dir/<version>
// unless it is there already, and describes it.
func ensureVulnDB(ctx context.Context, modVersion, dir string) (vulnDB, error) {
	_, version, ok := strings.Cut(modVersion, "@")
	if !ok {
		return vulnDB{}, usageError{fmt.Sprintf("-version %q is not module@version", modVersion)}
	}
	out, err := filepath.Abs(filepath.Join(dir, version))
	if err != nil {
		return vulnDB{}, err
	}
	src, at, err := downloadModule(ctx, modVersion)
	if err != nil {
		return vulnDB{}, err
	}
	if db, err := readVulnDB(out); err == nil {
		db.Source = modVersion
		return db, nil
	}
	db, err := buildVulnDB(src, out, at)
	db.Source = modVersion
	return db, err
}

// readVulnDB describes the database already built in dir.
func readVulnDB(dir string) (vulnDB, error) {
	db := vulnDB{Dir: dir}
	var meta dbMeta
	var mods []moduleMeta
	var vulns []vulnMeta
	for name, v := range map[string]any{"db.json": &meta, "modules.json": &mods, "vulns.json": &vulns} {
		raw, err := os.ReadFile(filepath.Join(dir, "index", name))
		if err != nil {
			return db, err
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return db, fmt.Errorf("%s: %w", name, err)
		}
	}
	db.Modified, db.Modules, db.Entries = meta.Modified, len(mods), len(vulns)
	return db, nil
}

// runVulnDB builds the pinned database and prints where it is.
func runVulnDB(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("vulndb")
	version := fs.String("version", defaultVulnDB, "the golang.org/x/vulndb `module@version` to build the database from")
	dir := fs.String("dir", filepath.Join("bin", "vulndb"), "build the database under `DIR`/VERSION")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: splicer-audit vulndb [-version module@version] [-dir DIR]\n\nBuilds the Go vulnerability database for govulncheck -db file://DIR from the\npinned golang.org/x/vulndb module, offline once the module is in the cache.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	db, err := ensureVulnDB(ctx, *version, *dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d entries over %d modules, last modified %s, from %s\n",
		db.Dir, db.Entries, db.Modules, db.Modified.Format(time.RFC3339), db.Source)
	return nil
}

// latestFixed returns the fixed version of ranges that no later fix or
// re-introduction supersedes, or "" when there is none: x/vulndb's
// osvutils.LatestFixed, which writes the "fixed" of index/modules.json
// (the latest fix carries over from one range to the next, as there).
func latestFixed(ranges []osvRange) string {
	latest := ""
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" && semverCompare(latest, e.Fixed) < 0 {
				latest = e.Fixed
			}
		}
		for _, e := range r.Events {
			if e.Introduced != "" && e.Introduced != "0" && semverCompare(latest, e.Introduced) < 0 {
				latest = ""
				break
			}
		}
	}
	return latest
}

// semverCompare compares two semantic versions without the leading "v", as
// OSV writes them (1.2.3, 0.0.0-20230101000000-abcdef), by the precedence
// of semver.org: -1, 0 or 1. A string that is not a version ("" included)
// sorts before every version, and equal to another non-version.
func semverCompare(a, b string) int {
	va, oka := parseSemver(a)
	vb, okb := parseSemver(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := range 3 {
		if c := compareNumeric(va.core[i], vb.core[i]); c != 0 {
			return c
		}
	}
	switch {
	case va.pre == nil && vb.pre == nil:
		return 0
	case va.pre == nil:
		return 1 // a release follows its pre-releases
	case vb.pre == nil:
		return -1
	}
	for i := 0; i < len(va.pre) && i < len(vb.pre); i++ {
		x, y := va.pre[i], vb.pre[i]
		nx, ny := isNumeric(x), isNumeric(y)
		var c int
		switch {
		case nx && ny:
			c = compareNumeric(x, y)
		case nx:
			c = -1 // numeric identifiers sort before alphanumeric ones
		case ny:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return compareInt(len(va.pre), len(vb.pre))
}

// semver is a parsed version: three numeric parts, and the pre-release
// identifiers (nil for a release).
type semver struct {
	core [3]string
	pre  []string
}

// parseSemver parses MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], build
// metadata ignored.
func parseSemver(v string) (semver, bool) {
	var s semver
	v, _, _ = strings.Cut(v, "+")
	core, pre, hasPre := strings.Cut(v, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return s, false
	}
	for i, p := range parts {
		if !isNumeric(p) || (len(p) > 1 && p[0] == '0') {
			return s, false
		}
		s.core[i] = p
	}
	if hasPre {
		s.pre = strings.Split(pre, ".")
		for _, id := range s.pre {
			if id == "" {
				return s, false
			}
		}
	}
	return s, true
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// compareNumeric compares two decimal strings without leading zeros by
// value, whatever their length.
func compareNumeric(a, b string) int {
	if c := compareInt(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func compareInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
