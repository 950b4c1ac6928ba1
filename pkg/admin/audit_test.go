package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// auditOps runs n operations through the handler, cycling through changes
// that apply, changes refused for their content, and requests refused for
// who made them; it returns how many of each kind it made.
func auditOps(t *testing.T, h http.Handler, n int) map[string]int {
	t.Helper()
	kinds := map[string]int{}
	states := []string{"drain", "ready", "maint"}
	for i := 0; i < n; i++ {
		var got response
		switch i % 6 {
		case 0:
			got = doAs(t, h, operatorToken, "POST", statePath, `{"state":"`+states[i%3]+`"}`)
			kinds["state"]++
		case 1:
			got = doAs(t, h, operatorToken, "PUT", "/api/v1/frontends/pg/backends/a/weight", fmt.Sprintf(`{"weight":%d}`, 1+i%256))
			kinds["weight"]++
		case 2:
			got = doAs(t, h, viewerToken, "POST", statePath, `{"state":"drain"}`)
			kinds["forbidden"]++
		case 3:
			got = doAs(t, h, "splicer_wrong", "GET", "/api/v1/stats", "")
			kinds["unauthenticated"]++
		case 4:
			got = doAs(t, h, operatorToken, "DELETE", "/api/v1/connections/77", "")
			kinds["no such connection"]++
		case 5:
			got = doAs(t, h, scopedToken, "PUT", "/api/v1/frontends/pg/backends/a/weight", `{"weight":3}`)
			kinds["out of scope"]++
		}
		if got.status == 0 {
			t.Fatal("no answer")
		}
	}
	return kinds
}

// TestAuditThousandOperations makes 1000 operations, a third of them
// denied: exactly 1000 records, in order, and the chain verifies.
func TestAuditThousandOperations(t *testing.T) {
	sec, path := newAuditedSecurity(t, AuditOptions{})
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()
	kinds := auditOps(t, h, 1000)
	recs := readAudit(t, path)
	if len(recs) != 1000 {
		t.Fatalf("%d records for 1000 operations (%v)", len(recs), kinds)
	}
	results := map[string]int{}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		results[strings.SplitN(r.Result, ":", 2)[0]]++
	}
	if want := (map[string]int{"ok": 334, "denied": 500, "error": 166}); fmt.Sprint(results) != fmt.Sprint(want) {
		t.Errorf("results %v, want %v", results, want)
	}
	sum, err := VerifyAudit([]string{path}, [][]byte{auditKey}, nil)
	if err != nil || sum.Records != 1000 || sum.First != 1 || sum.Last != 1000 {
		t.Fatalf("verify: %+v, %v", sum, err)
	}
	cp := doAs(t, h, adminToken, "GET", "/api/v1/audit/checkpoint", "")
	if want := fmt.Sprintf(`{"seq":1000,"h":%q,"file":%q}`, sum.LastHash, path); cp.status != 200 || cp.body != want+"\n" {
		t.Errorf("checkpoint %d %s, want %s", cp.status, cp.body, want)
	}
}

// TestAuditTamperDetected alters a copy of a 1000-record log in each way an
// intruder might and checks that verification names the first bad seq.
func TestAuditTamperDetected(t *testing.T) {
	sec, path := newAuditedSecurity(t, AuditOptions{})
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()
	auditOps(t, h, 1000)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := sec.audit.Checkpoint()
	lines := bytes.SplitAfter(orig, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty piece after the last newline
	join := func(ls [][]byte) []byte { return bytes.Join(ls, nil) }
	// set changes one byte of line i to b, which must differ.
	set := func(i, at int, b byte) []byte {
		ls := make([][]byte, len(lines))
		copy(ls, lines)
		l := bytes.Clone(ls[i])
		if l[at] == b {
			b ^= 0x01
		}
		l[at] = b
		ls[i] = l
		return join(ls)
	}
	without := func(i int) []byte {
		return join(append(append([][]byte{}, lines[:i]...), lines[i+1:]...))
	}
	swapped := func(i int) []byte {
		ls := append([][]byte{}, lines...)
		ls[i], ls[i+1] = ls[i+1], ls[i]
		return join(ls)
	}
	userAt := bytes.Index(lines[730], []byte(`"user":"`)) + len(`"user":"`)
	tests := []struct {
		name       string
		data       []byte
		checkpoint *AuditCheckpoint
		wantErr    string // "" for a log that verifies
	}{
		{"intact", orig, &cp, ""},
		{"a byte changed in a user name", set(730, userAt, 'x'), nil, "seq 731: hash mismatch: the record was altered"},
		{"a byte changed in a hash", set(730, len(lines[730])-5, '0'), nil, "seq 731: hash mismatch: the record was altered"},
		{"a byte changed in the syntax", set(730, 0, '['), nil, "seq 731: unreadable record"},
		{"a line deleted", without(730), nil,
			"seq 731: not found where expected (found seq 732): a record was removed, moved or inserted"},
		{"two lines swapped", swapped(730), nil,
			"seq 731: not found where expected (found seq 732): a record was removed, moved or inserted"},
		{"the tail cut, without a checkpoint", join(lines[:990]), nil, ""},
		{"the tail cut, against the checkpoint", join(lines[:990]), &cp,
			"seq 991: missing: the log ends at seq 990 but the checkpoint is seq 1000: the log was cut short"},
		{"the last line cut mid-record", orig[:len(orig)-20], nil, "seq 1000: the last record is cut short (no line break)"},
		{"the first line deleted", without(0), nil,
			"seq 2: the chain does not start here (seq 1, or a file's first record with prev_h); give the files before it"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprintf("audit%d.log", i))
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := VerifyAudit([]string{p}, [][]byte{auditKey}, tc.checkpoint)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("verify: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("verify: %v, want %q", err, tc.wantErr)
			}
			var ce *AuditChainError
			if tc.wantErr != "" && !errors.As(err, &ce) {
				t.Errorf("error %T is not an *AuditChainError", err)
			}
		})
	}
	if _, err := VerifyAudit([]string{path}, [][]byte{[]byte("another key, 32 bytes long.....")}, nil); err == nil ||
		!strings.Contains(err.Error(), "seq 1: does not verify with the key given") {
		t.Errorf("verify with another key: %v", err)
	}
}

// TestAuditRotation rotates a small log many times: the chain verifies
// across the files kept, and on its own from any file on once the older
// ones are deleted, while files out of order or with a gap do not.
func TestAuditRotation(t *testing.T) {
	sec, path := newAuditedSecurity(t, AuditOptions{MaxSize: 4 << 10, Keep: 3})
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()
	auditOps(t, h, 120)
	files := auditFiles(path, 3)
	if len(files) != 4 {
		t.Fatalf("files %v, want 3 rotated and the live one", files)
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Error("a fourth rotated file was kept")
	}
	sum, err := VerifyAudit(files, [][]byte{auditKey}, nil)
	if err != nil || sum.Last != 120 || sum.First <= 1 || len(sum.Files) != 4 {
		t.Fatalf("verify across files: %+v, %v", sum, err)
	}
	for i, f := range sum.Files {
		if f.Records == 0 || i > 0 && f.First != sum.Files[i-1].Last+1 {
			t.Errorf("file %d: %+v", i, f)
		}
		if i > 0 && f.Path == path && f.Records > 0 {
			if recs := readAudit(t, f.Path); recs[0].PrevHash == "" {
				t.Errorf("%s starts without prev_h", f.Path)
			}
		}
	}
	// Retention: from the newest rotated file on, the chain still verifies.
	if _, err := VerifyAudit(files[2:], [][]byte{auditKey}, nil); err != nil {
		t.Errorf("verify from %s: %v", files[2], err)
	}
	cp := sec.audit.Checkpoint()
	if _, err := VerifyAudit(files, [][]byte{auditKey}, &cp); err != nil {
		t.Errorf("verify against the checkpoint: %v", err)
	}
	if _, err := VerifyAudit([]string{files[1], files[0], files[2], files[3]}, [][]byte{auditKey}, nil); err == nil {
		t.Error("files out of order verified")
	}
	if _, err := VerifyAudit([]string{files[0], files[2], files[3]}, [][]byte{auditKey}, nil); err == nil ||
		!strings.Contains(err.Error(), "not found where expected") {
		t.Errorf("a file missing from the middle: %v", err)
	}
}

// TestAuditReopen restarts the log: the chain continues; a tail that does
// not verify, or another key, refuses to open.
func TestAuditReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAudit(path, auditKey, AuditOptions{MaxSize: 1 << 10, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	appendN := func(a *Audit, n int) {
		for i := 0; i < n; i++ {
			if _, err := a.Append(AuditRecord{Action: "test", Result: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(a, 3)
	a.Close()
	if _, err := a.Append(AuditRecord{}); !errors.Is(err, ErrAuditUnavailable) {
		t.Errorf("Append after Close: %v", err)
	}
	if a, err = OpenAudit(path, auditKey, AuditOptions{MaxSize: 1 << 10, Keep: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAudit(path, auditKey, AuditOptions{}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second writer: %v", err)
	}
	appendN(a, 2)
	if cp := a.Checkpoint(); cp.Seq != 5 {
		t.Errorf("seq after reopen %d, want 5", cp.Seq)
	}
	// Fill until a rotation leaves the live file empty, and reopen then:
	// the chain continues from PATH.1.
	for a.size != 0 {
		appendN(a, 1)
	}
	last := a.Checkpoint()
	a.Close()
	if a, err = OpenAudit(path, auditKey, AuditOptions{MaxSize: 1 << 10, Keep: 2}); err != nil {
		t.Fatal(err)
	}
	appendN(a, 1)
	a.Close()
	if _, err := VerifyAudit(auditFiles(path, 2), [][]byte{auditKey}, &last); err != nil {
		t.Errorf("verify after reopening on an empty file: %v", err)
	}

	if _, err := OpenAudit(path, []byte("another key, 32 bytes long....."), AuditOptions{}); err == nil ||
		!strings.Contains(err.Error(), "does not verify with admin.audit_key") {
		t.Errorf("reopen with another key: %v", err)
	}
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-3], 0o600)
	if _, err := OpenAudit(path, auditKey, AuditOptions{}); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("reopen after a crash mid-record: %v", err)
	}
}

// TestAuditKeyRotation changes the key while running: a new file starts,
// each file verifies with its own key, and both keys verify the whole.
func TestAuditKeyRotation(t *testing.T) {
	sec, path := newAuditedSecurity(t, AuditOptions{Keep: 5})
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()
	auditOps(t, h, 12)
	newKey := []byte("the second key, 32 bytes long...")
	if err := sec.audit.SetKey(newKey); err != nil {
		t.Fatal(err)
	}
	auditOps(t, h, 12)
	files := auditFiles(path, 5)
	if len(files) != 2 {
		t.Fatalf("files %v", files)
	}
	if sum, err := VerifyAudit(files, [][]byte{auditKey, newKey}, nil); err != nil || sum.Records != 24 {
		t.Errorf("verify with both keys: %+v, %v", sum, err)
	}
	if _, err := VerifyAudit(files, [][]byte{auditKey}, nil); err == nil || !strings.Contains(err.Error(), "seq 13: does not verify") {
		t.Errorf("verify with the old key only: %v", err)
	}
}

// TestAuditFailClosed puts the audit log on a full disk: every change is
// refused with 503 and nothing changes; reads still work.
func TestAuditFailClosed(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	sec, _ := newAuditedSecurity(t, AuditOptions{})
	sec.audit.f.Close()
	sec.audit.f = full
	src := newFakeSource()
	h := newTestServer(src, Options{Security: sec}).Handler()
	for _, tc := range []struct{ method, target, body string }{
		{"POST", statePath, `{"state":"drain"}`},
		{"PUT", "/api/v1/frontends/pg/backends/a/weight", `{"weight":3}`},
		{"DELETE", "/api/v1/connections/3", ""},
	} {
		got := do(t, h, tc.method, tc.target, tc.body)
		if got.status != http.StatusServiceUnavailable ||
			got.body != `{"error":"audit log unavailable, change refused; see the daemon's log"}`+"\n" {
			t.Errorf("%s %s: %d %s", tc.method, tc.target, got.status, got.body)
		}
	}
	if b := src.Stats().Frontends[0].Backends[0]; b.State != "ready" || b.Weight != 100 {
		t.Errorf("a change went through without its record: %s weight %d", b.State, b.Weight)
	}
	if _, n, _ := src.Connections("", 0, 10); n != 4 {
		t.Errorf("a connection was closed without its record: %d left", n)
	}
	if got := do(t, h, "GET", "/api/v1/stats", ""); got.status != http.StatusOK {
		t.Errorf("stats with the audit log down: %d", got.status)
	}
}

// TestRunAuditVerify runs `splicer audit verify` on a rotated log, then on
// a damaged copy.
func TestRunAuditVerify(t *testing.T) {
	sec, path := newAuditedSecurity(t, AuditOptions{MaxSize: 4 << 10, Keep: 1})
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()
	n := 40
	auditOps(t, h, n)
	// Record sizes vary with the time's digits: make sure the live file
	// has records, so that the output has a known shape.
	for sec.audit.size == 0 {
		auditOps(t, h, 1)
		n++
	}
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	os.WriteFile(keyFile, append(bytes.Clone(auditKey), '\n'), 0o600)
	cp := sec.audit.Checkpoint()
	var out strings.Builder
	args := []string{"verify", "-key-file", keyFile, "-checkpoint", cp.String(), path + ".1", path}
	if err := RunAudit(context.Background(), args, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	sum, _ := VerifyAudit([]string{path + ".1", path}, [][]byte{auditKey}, nil)
	want := fmt.Sprintf("%s.1: seq %d-%d, %d records, chain intact\n%s: seq %d-%d, %d records, chain intact\n"+
		"OK: %d records, seq %d-%d, last h %s (starts at seq %d: earlier files were rotated away or not given); checkpoint seq %d matches\n",
		path, sum.Files[0].First, sum.Files[0].Last, sum.Files[0].Records, path, sum.Files[1].First, n, sum.Files[1].Records,
		sum.Records, sum.First, n, cp.Hash, sum.First, n)
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}

	data, _ := os.ReadFile(path + ".1")
	bad := filepath.Join(t.TempDir(), "bad.log")
	os.WriteFile(bad, bytes.Replace(data, []byte(`"user":"otto"`), []byte(`"user":"eve!"`), 1), 0o600)
	out.Reset()
	err := RunAudit(context.Background(), []string{"verify", "-key-file", keyFile, bad, path}, &out)
	if err == nil || !strings.Contains(err.Error(), "audit chain broken: "+bad+":") || !strings.Contains(err.Error(), "hash mismatch") {
		t.Errorf("damaged log: %v", err)
	}
	if err := RunAudit(context.Background(), []string{"verify", path}, &out); !errors.Is(err, ErrUsage) {
		t.Errorf("no key: %v", err)
	}
}
