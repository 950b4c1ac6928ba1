package admin

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestOpenAuditRefusals opens logs whose tail cannot be trusted: each is
// refused with a message naming the file and what is wrong with it, so a
// restart never continues a chain from a record it cannot verify.
func TestOpenAuditRefusals(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.log")
	a, err := OpenAudit(good, auditKey, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	appendRecords(t, a, 3)
	a.Close()
	lines := splitLines(t, good)
	// withPrevH puts a prev_h field in front of line 3's hash.
	withPrevH := bytes.Replace(lines[2], []byte(`,"h":"`), []byte(`,"prev_h":"zz","h":"`), 1)
	// badHex spoils line 3's hash.
	badHex := append(bytes.Clone(lines[2][:len(lines[2])-6]), []byte(`zzz"}`+"\n")...)
	twoValues := bytes.Replace(lines[2], []byte(`{"seq":3,`), []byte(`{"seq":3}{"seq":3,`), 1)
	altered := bytes.Replace(lines[2], []byte(`"user":"otto"`), []byte(`"user":"eve"`), 1)
	// One line of 1MiB and a little more: no record fits in the tail that
	// OpenAudit reads.
	long := append(bytes.Repeat([]byte("x"), 1<<20+10), '\n')
	const advice = "; check it with `splicer audit verify`, then move it aside to start a new chain"

	for _, tc := range []struct {
		name  string
		lines [][]byte
		want  string // after "audit log PATH: "
	}{
		{"the last line is not a record", [][]byte{lines[0], []byte(`{"seq":2}` + "\n")},
			`the last record is unreadable: the line does not end with its hash ,"h":"..."}` + advice},
		{"the last hash is not hex", [][]byte{lines[0], lines[1], badHex},
			`the last record is unreadable: hash "` + string(badHex[len(badHex)-67:len(badHex)-3]) + `" is not 64 hex digits` + advice},
		{"two JSON values in the last line", [][]byte{lines[0], lines[1], twoValues},
			"the last record is unreadable: not a record: more than one JSON value" + advice},
		{"the last record's prev_h is not hex", [][]byte{lines[0], lines[1], withPrevH},
			`seq 3: prev_h: hash "zz" is not 64 hex digits` + advice},
		{"the last record alone", [][]byte{lines[2]}, "seq 3: the record before it is missing" + advice},
		{"the record before the last one removed", [][]byte{lines[0], lines[2]},
			"the record before seq 3 is missing or unreadable" + advice},
		{"the last record altered", [][]byte{lines[0], lines[1], altered},
			"seq 3 does not verify with admin.audit_key (altered, or written with another key)" + advice},
		{"a last line longer than the tail read", [][]byte{lines[0], lines[1], long},
			"the last record is longer than 1048576 bytes" + advice},
		{"no line break at all in the tail", [][]byte{long[:len(long)-1]},
			"the last record is longer than 1048576 bytes" + advice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(path, bytes.Join(tc.lines, nil), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := OpenAudit(path, auditKey, AuditOptions{})
			if want := "audit log " + path + ": " + tc.want; err == nil || err.Error() != want {
				t.Errorf("open: %v\nwant: %s", err, want)
			}
			if a != nil {
				a.Close()
			}
			// The file was not changed, and may be opened again once
			// moved aside: no lock is left on it.
			if data, _ := os.ReadFile(path); !bytes.Equal(data, bytes.Join(tc.lines, nil)) {
				t.Error("the refused file was changed")
			}
			os.Rename(path, path+".bad")
			if a, err := OpenAudit(path, auditKey, AuditOptions{}); err != nil {
				t.Errorf("a new chain beside the refused file: %v", err)
			} else {
				a.Close()
			}
		})
	}

	if _, err := OpenAudit(good, nil, AuditOptions{}); err == nil || err.Error() != "audit log: empty key" {
		t.Errorf("an empty key: %v", err)
	}
	missing := filepath.Join(dir, "no-such-dir", "audit.log")
	if _, err := OpenAudit(missing, auditKey, AuditOptions{}); err == nil ||
		err.Error() != "audit log: open "+missing+": no such file or directory" {
		t.Errorf("a missing directory: %v", err)
	}
	// An empty live file continues from PATH.1; one that cannot be read
	// is refused.
	empty := filepath.Join(dir, "empty.log")
	os.WriteFile(empty, nil, 0o600)
	os.Mkdir(empty+".1", 0o700)
	if _, err := OpenAudit(empty, auditKey, AuditOptions{}); err == nil ||
		err.Error() != "audit log: read "+empty+".1: is a directory" {
		t.Errorf("PATH.1 is a directory: %v", err)
	}
}

// TestOpenAuditLongLog reopens a log larger than the tail OpenAudit reads:
// the chain continues from its last records.
func TestOpenAuditLongLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAudit(path, auditKey, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Records with a long target, so a few make more than 1MiB.
	for a.size <= 1<<20+1<<16 {
		if _, err := a.Append(AuditRecord{Action: "test", Target: strings.Repeat("t", 60<<10), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	cp := a.Checkpoint()
	a.Close()
	if a, err = OpenAudit(path, auditKey, AuditOptions{}); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, a, 1)
	a.Close()
	if sum, err := VerifyAudit([]string{path}, [][]byte{auditKey}, &cp); err != nil || sum.Last != cp.Seq+1 {
		t.Errorf("after reopening a %d-byte log: %+v, %v", a.size, sum, err)
	}
}

// TestAuditRotationKeepNone rotates with audit_keep = 0: the full file is
// deleted, and the new one still verifies on its own from its prev_h.
func TestAuditRotationKeepNone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	a, err := OpenAudit(path, auditKey, AuditOptions{MaxSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	appendRecords(t, a, 30)
	for a.size == 0 {
		appendRecords(t, a, 1)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files kept with audit_keep = 0: %v", ents)
	}
	recs := readAudit(t, path)
	cp := a.Checkpoint()
	if recs[0].PrevHash == "" || recs[len(recs)-1].Seq != cp.Seq {
		t.Errorf("the live file after rotations: first %+v, checkpoint %s", recs[0], cp)
	}
	if sum, err := VerifyAudit([]string{path}, [][]byte{auditKey}, &cp); err != nil || sum.First != recs[0].Seq {
		t.Errorf("verify: %+v, %v", sum, err)
	}
}

// TestAuditSetKey changes the key only when it differs, refuses an empty
// one, and needs no rotation while the live file is empty; a nil Audit
// takes any key.
func TestAuditSetKey(t *testing.T) {
	var none *Audit
	if err := none.SetKey(nil); err != nil {
		t.Errorf("nil Audit: %v", err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAudit(path, auditKey, AuditOptions{Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	newKey := []byte("the second key, 32 bytes long...")
	if err := a.SetKey(newKey); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a new key on an empty file rotated it: %v", err)
	}
	appendRecords(t, a, 2)
	if err := a.SetKey(bytes.Clone(newKey)); err != nil {
		t.Fatal(err)
	}
	if err := a.SetKey(nil); err == nil || err.Error() != "audit log: empty key" {
		t.Errorf("an empty key: %v", err)
	}
	appendRecords(t, a, 1)
	if _, err := os.Stat(path + ".1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the same key again rotated the file: %v", err)
	}
	if sum, err := VerifyAudit([]string{path}, [][]byte{newKey}, nil); err != nil || sum.Records != 3 {
		t.Errorf("verify with the new key: %+v, %v", sum, err)
	}
}

// auditedServer serves src with an audit log at dir/audit.log and returns
// its handler, its Security and its log.
func auditedServer(t *testing.T, dir string, src Source, opts AuditOptions) (http.Handler, *Security, *testutil.SyncBuffer) {
	t.Helper()
	a, err := OpenAudit(filepath.Join(dir, "audit.log"), auditKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	sec := newTestSecurity()
	sec.audit, sec.auditPath = a, a.path
	var log testutil.SyncBuffer
	return New(src, nil, zerolog.New(&log), Options{Security: sec}).Handler(), sec, &log
}

const auditRefused = `{"error":"audit log unavailable, change refused; see the daemon's log"}` + "\n"

// TestAuditDiskFull puts the audit log on a small tmpfs and fills it: the
// change whose record does not fit is refused with 503 and does not
// happen, the daemon's log says why, and the part of the record written is
// cut off again, so once there is room the chain goes on unbroken.
func TestAuditDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "size=64k")
	src := newFakeSource()
	h, sec, log := auditedServer(t, dir, src, AuditOptions{})
	path := filepath.Join(dir, "audit.log")
	if got := doAs(t, h, operatorToken, "POST", statePath, `{"state":"drain"}`); got.status != http.StatusOK {
		t.Fatalf("a change with room on the disk: %d %s", got.status, got.body)
	}
	filler := fill(t, dir)

	// The records go on while the file's last page has room.
	ok, weight := 1, 100
	var got response
	for i := 1; i < 100; i++ {
		got = doAs(t, h, operatorToken, "PUT", "/api/v1/frontends/pg/backends/a/weight", fmt.Sprintf(`{"weight":%d}`, i))
		if got.status != http.StatusOK {
			break
		}
		ok, weight = ok+1, i
	}
	if got.status != http.StatusServiceUnavailable || got.body != auditRefused {
		t.Fatalf("the change whose record did not fit: %d %s", got.status, got.body)
	}
	if w := src.Stats().Frontends[0].Backends[0].Weight; w != weight {
		t.Errorf("weight %d after a refused change; want %d, the last one recorded", w, weight)
	}
	want := fmt.Sprintf(`"level":"error","error":"audit log unavailable: %s: write %s: no space left on device","action":"backend.weight","message":"audit record not written"`, path, path)
	if !strings.Contains(log.String(), want) {
		t.Errorf("the daemon's log:\n%s\nwant a line with %s", log.String(), want)
	}
	fi, _ := os.Stat(path)
	if cp := sec.audit.Checkpoint(); fi.Size() != sec.audit.size || cp.Seq != uint64(ok) {
		t.Errorf("file size %d, %d recorded, checkpoint %s: the failed record was not cut off", fi.Size(), sec.audit.size, cp)
	}
	// A request refused for who made it stays refused when its record
	// cannot be written either.
	if got := doAs(t, h, viewerToken, "POST", statePath, `{"state":"drain"}`); got.status != http.StatusForbidden {
		t.Errorf("a viewer's change on a full disk: %d %s", got.status, got.body)
	}

	os.Remove(filler)
	if got := doAs(t, h, operatorToken, "POST", statePath, `{"state":"drain"}`); got.status != http.StatusOK {
		t.Fatalf("a change once there is room: %d %s", got.status, got.body)
	}
	cp := sec.audit.Checkpoint()
	if sum, err := VerifyAudit([]string{path}, [][]byte{auditKey}, &cp); err != nil || sum.Records != ok+1 {
		t.Errorf("verify: %+v, %v; want %d records", sum, err, ok+1)
	}
}

// TestAuditDirectoryReadOnly makes the audit log's directory read-only
// while the daemon runs: records still go to the open file until it must
// be rotated; the rotation fails, and from then on every change is
// refused (fail closed) until a restart, whose log continues the chain.
func TestAuditDirectoryReadOnly(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	h, sec, log := auditedServer(t, dir, src, AuditOptions{MaxSize: 2 << 10, Keep: 1})
	path := filepath.Join(dir, "audit.log")
	writable := readOnly(t, dir)

	states := []string{"drain", "ready"}
	n := 0
	for ; sec.audit.broken == nil && n < 100; n++ {
		got := doAs(t, h, operatorToken, "POST", statePath, `{"state":"`+states[n%2]+`"}`)
		if got.status != http.StatusOK {
			t.Fatalf("change %d before the rotation: %d %s", n, got.status, got.body)
		}
	}
	if sec.audit.broken == nil {
		t.Fatal("no rotation was due after 100 records")
	}
	last := sec.audit.Checkpoint()
	before := src.Stats().Frontends[0].Backends[0].State
	got := doAs(t, h, operatorToken, "POST", statePath, `{"state":"maint"}`)
	if got.status != http.StatusServiceUnavailable || got.body != auditRefused {
		t.Errorf("a change after the failed rotation: %d %s", got.status, got.body)
	}
	if st := src.Stats().Frontends[0].Backends[0].State; st != before {
		t.Errorf("state %s after a refused change, want %s", st, before)
	}
	want := fmt.Sprintf(`"error":"audit log unavailable: rotating %s: remove %s.1: read-only file system"`, path, path)
	if !strings.Contains(log.String(), want) {
		t.Errorf("the daemon's log:\n%s\nwant a line with %s", log.String(), want)
	}
	// Reads go on.
	if got := doAs(t, h, viewerToken, "GET", "/api/v1/stats", ""); got.status != http.StatusOK {
		t.Errorf("stats with the audit log down: %d", got.status)
	}

	writable()
	sec.audit.Close()
	a, err := OpenAudit(path, auditKey, AuditOptions{MaxSize: 2 << 10, Keep: 1})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer a.Close()
	appendRecords(t, a, 1)
	if sum, err := VerifyAudit(auditFiles(path, 1), [][]byte{auditKey}, &last); err != nil || sum.Last != last.Seq+1 || int(sum.Last) != n+1 {
		t.Errorf("verify after the restart: %+v, %v; want seq 1-%d", sum, err, n+1)
	}
}

// TestAuditNewKeyOnReadOnlyDirectory reloads a new audit key while the
// log's directory is read-only: the new file cannot be started, so the
// reload fails naming why, and changes are refused from then on.
func TestAuditNewKeyOnReadOnlyDirectory(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	h, sec, _ := auditedServer(t, dir, src, AuditOptions{Keep: 2})
	path := filepath.Join(dir, "audit.log")
	auditOps(t, h, 3)
	readOnly(t, dir)

	a := sec.access.Load()
	next := *a
	next.auditKey = []byte("the second key, 32 bytes long...")
	err := sec.Apply(&config.Config{Admin: config.Admin{AuditLog: path}}, &next)
	if want := fmt.Sprintf("admin.audit_key: rotating %s for a new key: remove %s.2: read-only file system", path, path); err == nil || err.Error() != want {
		t.Errorf("apply: %v\nwant: %s", err, want)
	}
	if sec.access.Load() != a {
		t.Error("a failed apply changed the access in force")
	}
	if got := doAs(t, h, operatorToken, "POST", statePath, `{"state":"drain"}`); got.status != http.StatusServiceUnavailable || got.body != auditRefused {
		t.Errorf("a change after the failed key change: %d %s", got.status, got.body)
	}
}

// TestAuditRotationOutOfInodes rotates the audit log on a file system
// with no inode left: PATH becomes PATH.1 but no new PATH can be created.
// The record that filled the file is kept; every later one is refused,
// even once an inode is free, until the daemon restarts and continues the
// chain from PATH.1.
func TestAuditRotationOutOfInodes(t *testing.T) {
	dir := mountTmpfs(t, "size=1m,nr_inodes=32")
	path := filepath.Join(dir, "audit.log")
	a, err := OpenAudit(path, auditKey, AuditOptions{MaxSize: 1 << 10, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var fillers []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("filler%d", i))
		f, err := os.Create(p)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil || i > 100 {
			t.Fatalf("using up the inodes: %v after %d files", err, i)
		}
		f.Close()
		fillers = append(fillers, p)
	}
	n := 0
	for ; a.broken == nil && n < 100; n++ {
		appendRecords(t, a, 1)
	}
	last := a.Checkpoint()
	if last.Seq != uint64(n) || n < 2 {
		t.Fatalf("checkpoint %s after %d records", last, n)
	}
	want := fmt.Sprintf("audit log unavailable: rotating %s: audit log: open %s: no space left on device", path, path)
	if _, err := a.Append(AuditRecord{Action: "test"}); err == nil || err.Error() != want || !errors.Is(err, ErrAuditUnavailable) {
		t.Errorf("a record after the failed rotation: %v\nwant: %s", err, want)
	}
	os.Remove(fillers[0])
	if _, err := a.Append(AuditRecord{Action: "test"}); err == nil || err.Error() != want {
		t.Errorf("a record once an inode is free: %v\nwant: %s", err, want)
	}
	a.Close()

	if a, err = OpenAudit(path, auditKey, AuditOptions{MaxSize: 1 << 10, Keep: 1}); err != nil {
		t.Fatalf("restart: %v", err)
	}
	appendRecords(t, a, 1)
	if sum, err := VerifyAudit(auditFiles(path, 1), [][]byte{auditKey}, &last); err != nil || sum.Last != last.Seq+1 || len(sum.Files) != 2 {
		t.Errorf("verify after the restart: %+v, %v", sum, err)
	}
}
