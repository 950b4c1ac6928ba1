package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// appendRecords writes n records to a and fails the test on an error.
func appendRecords(t *testing.T, a *Audit, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := a.Append(AuditRecord{User: "otto", Action: "backend.state", Target: "pg/a", New: "drain", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
}

// rotatedLog writes a log of n records at dir/audit.log, rotated at 1KiB
// with two rotated files kept, and returns its path and its checkpoint.
// The live file is not empty, so its first record carries prev_h.
func rotatedLog(t *testing.T, dir string, n int) (string, AuditCheckpoint) {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	a, err := OpenAudit(path, auditKey, AuditOptions{MaxSize: 1 << 10, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	appendRecords(t, a, n)
	for a.size == 0 {
		appendRecords(t, a, 1)
	}
	if _, err := os.Stat(path + ".2"); err != nil {
		t.Fatalf("%d records did not rotate twice: %v", n, err)
	}
	return path, a.Checkpoint()
}

// splitLines cuts an audit file into its lines, each with its line break.
func splitLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	return lines[:len(lines)-1]
}

// TestVerifyAuditRotatedTampering alters a rotated log where its files
// meet, and checks each with the checkpoints an operator keeps: every
// verification names the file, line and seq at which the chain breaks.
func TestVerifyAuditRotatedTampering(t *testing.T) {
	dir := t.TempDir()
	path, cp := rotatedLog(t, dir, 40)
	older, newer, live := splitLines(t, path+".2"), splitLines(t, path+".1"), splitLines(t, path)
	liveFirst := readAudit(t, path)[0]
	if liveFirst.PrevHash == "" {
		t.Fatal("the live file's first record has no prev_h")
	}
	firstSeq := readAudit(t, path+".2")[0].Seq

	// write makes a file of the lines given, in order.
	write := func(name string, parts ...[][]byte) string {
		p := filepath.Join(dir, name)
		var data []byte
		for _, ls := range parts {
			data = append(data, bytes.Join(ls, nil)...)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// withPrevH replaces the live file's first prev_h.
	withPrevH := func(h string) [][]byte {
		ls := append([][]byte{}, live...)
		ls[0] = bytes.Replace(ls[0], []byte(`"prev_h":"`+liveFirst.PrevHash+`"`), []byte(`"prev_h":"`+h+`"`), 1)
		return ls
	}
	otherHash := strings.Repeat("ab", 32)
	files := []string{path + ".2", path + ".1", path}
	wrongCP := cp
	wrongCP.Hash = otherHash
	oldCP := AuditCheckpoint{Seq: firstSeq, Hash: otherHash}

	tests := []struct {
		name       string
		files      []string
		checkpoint *AuditCheckpoint
		want       string
	}{
		{"the files before the live one given in full", files, &cp, ""},
		{"the live file alone: anchored on its prev_h", []string{path}, nil, ""},
		{"an empty checkpoint: anything extends it", files, &AuditCheckpoint{Hash: otherHash}, ""},
		{"prev_h rewritten to another chain", []string{path + ".2", path + ".1", write("other-prev", withPrevH(otherHash))}, nil,
			fmt.Sprintf("%s:1: seq %d: prev_h does not match the last record of the file before", filepath.Join(dir, "other-prev"), liveFirst.Seq)},
		{"prev_h that is not a hash", []string{write("bad-prev", withPrevH("xyz"))}, nil,
			fmt.Sprintf(`%s:1: seq %d: prev_h: hash "xyz" is not 64 hex digits`, filepath.Join(dir, "bad-prev"), liveFirst.Seq)},
		{"two files joined into one", []string{path + ".2", write("joined", newer, live)}, nil,
			fmt.Sprintf("%s:%d: seq %d: prev_h in the middle of a file", filepath.Join(dir, "joined"), len(newer)+1, liveFirst.Seq)},
		{"the checkpoint's hash differs", files, &wrongCP,
			fmt.Sprintf("%s: seq %d: does not match the checkpoint's hash", path, cp.Seq)},
		{"the checkpoint is older than the files given", []string{path}, &oldCP,
			fmt.Sprintf("%s: seq %d: the checkpoint's record is before the files given", path, firstSeq)},
		{"the oldest file's first line removed", []string{write("headless", older[1:]), path + ".1", path}, nil,
			fmt.Sprintf("%s:1: seq %d: the chain does not start here (seq 1, or a file's first record with prev_h); give the files before it",
				filepath.Join(dir, "headless"), firstSeq+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sum, err := VerifyAudit(tc.files, [][]byte{auditKey}, tc.checkpoint)
			if tc.want == "" {
				if err != nil || sum.Last != cp.Seq || sum.LastHash != cp.Hash {
					t.Errorf("verify: %+v, %v; want the chain to end at %s", sum, err, cp)
				}
				return
			}
			var ce *AuditChainError
			if err == nil || err.Error() != tc.want || !errors.As(err, &ce) {
				t.Errorf("verify: %v\nwant: %s", err, tc.want)
			}
		})
	}

	if _, err := VerifyAudit([]string{filepath.Join(dir, "gone.log")}, [][]byte{auditKey}, nil); err == nil ||
		err.Error() != "audit verify: open "+filepath.Join(dir, "gone.log")+": no such file or directory" {
		t.Errorf("a missing file: %v", err)
	}
}

// TestParseCheckpoint reads the two forms a checkpoint is kept in and
// refuses anything else, naming what is wrong.
func TestParseCheckpoint(t *testing.T) {
	h := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		in, want string // want: the checkpoint as SEQ:HASH, or the error
	}{
		{"42:" + h, "42:" + h},
		{"  42:" + h + "\n", "42:" + h},
		{`{"seq":42,"h":"` + h + `","file":"/var/log/splicer/audit.log"}`, "42:" + h},
		{`{"seq":42,"h":}`, "checkpoint: invalid character '}' looking for beginning of value"},
		{"42", `checkpoint "42": want SEQ:HASH`},
		{"x:" + h, `checkpoint "x:` + h + `": want SEQ:HASH`},
		{"-1:" + h, `checkpoint "-1:` + h + `": want SEQ:HASH`},
		{"42:" + h[:62], `checkpoint: hash "` + h[:62] + `" is not 64 hex digits`},
		{`{"seq":42}`, `checkpoint: hash "" is not 64 hex digits`},
	} {
		cp, err := ParseCheckpoint(tc.in)
		got := cp.String()
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("ParseCheckpoint(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// auditConfig writes a config whose [admin] keeps its audit log at log
// with the key in a 0600 file, and returns the config's path and the key
// file's. extra is added to [admin].
func auditConfig(t *testing.T, dir, log, extra string) (string, string) {
	t.Helper()
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, auditKey, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "splicer.toml")
	text := fmt.Sprintf("[admin]\nlisten = \"127.0.0.1:0\"\n%s\n", extra)
	if log != "" {
		text += fmt.Sprintf("audit_log = %q\naudit_key = { file = %q }\naudit_keep = 2\n", log, keyFile)
	}
	text += "\n[[frontend]]\nname = \"pg\"\nlisten = \"127.0.0.1:0\"\n[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, keyFile
}

// TestRunAuditVerifyFromConfig runs `splicer audit verify -c CONFIG` as an
// operator does after an incident: the log and its rotated files are found
// from the config, and a checkpoint kept as the API's JSON is checked.
func TestRunAuditVerifyFromConfig(t *testing.T) {
	dir := t.TempDir()
	path, cp := rotatedLog(t, dir, 40)
	cfg, _ := auditConfig(t, dir, path, "")
	cpFile := filepath.Join(dir, "checkpoint.json")
	os.WriteFile(cpFile, []byte(fmt.Sprintf(`{"seq":%d,"h":%q,"file":%q}`+"\n", cp.Seq, cp.Hash, path)), 0o600)

	sum, err := VerifyAudit(auditFiles(path, 2), [][]byte{auditKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, f := range sum.Files {
		fmt.Fprintf(&want, "%s: seq %d-%d, %d records, chain intact\n", f.Path, f.First, f.Last, f.Records)
	}
	fmt.Fprintf(&want, "OK: %d records, seq %d-%d, last h %s (starts at seq %d: earlier files were rotated away or not given); checkpoint seq %d matches\n",
		sum.Records, sum.First, cp.Seq, cp.Hash, sum.First, cp.Seq)
	var out strings.Builder
	if err := RunAudit(context.Background(), []string{"verify", "-c", cfg, "-checkpoint-file", cpFile}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if out.String() != want.String() {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want.String())
	}

	// A log whose live file is empty (just rotated) verifies, saying so.
	empty := filepath.Join(dir, "empty.log")
	os.WriteFile(empty, nil, 0o600)
	out.Reset()
	if err := RunAudit(context.Background(), []string{"verify", "-c", cfg, path + ".1", empty}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasSuffix(got, empty+": empty\n"+
		fmt.Sprintf("OK: %d records, seq %d-%d, last h %s (starts at seq %d: earlier files were rotated away or not given)\n",
			sum.Files[1].Records, sum.Files[1].First, sum.Files[1].Last, readLastHash(t, path+".1"), sum.Files[1].First)) {
		t.Errorf("output with an empty live file:\n%s", got)
	}
}

// readLastHash returns the h of a file's last record.
func readLastHash(t *testing.T, path string) string {
	t.Helper()
	lines := splitLines(t, path)
	last := lines[len(lines)-1]
	_, _, h, err := parseAuditLine(last[:len(last)-1])
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h)
}

// TestRunAuditVerifyRefusals gives `splicer audit verify` what an operator
// may get wrong: each is refused with a message naming the flag, file or
// setting, and a usage error where the command line itself is wrong.
func TestRunAuditVerifyRefusals(t *testing.T) {
	dir := t.TempDir()
	path, cp := rotatedLog(t, dir, 40)
	_, keyFile := auditConfig(t, dir, path, "")
	noAudit, _ := auditConfig(t, t.TempDir(), "", "")
	noKeyDir := t.TempDir()
	noKey, noKeyFile := auditConfig(t, noKeyDir, path, "")
	os.Remove(noKeyFile)
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name  string
		args  []string
		want  string // the error's text; "usage" for any usage error
		usage bool
	}{
		{"no subcommand", nil, "", true},
		{"an unknown subcommand", []string{"check"}, "", true},
		{"an unknown flag", []string{"verify", "-key", keyFile, path}, "", true},
		{"no key", []string{"verify", path}, "", true},
		{"a key but no file", []string{"verify", "-key-file", keyFile}, "", true},
		{"both checkpoint flags", []string{"verify", "-key-file", keyFile, "-checkpoint", cp.String(), "-checkpoint-file", missing, path}, "", true},
		{"a checkpoint that does not parse", []string{"verify", "-key-file", keyFile, "-checkpoint", "12", path}, "", true},
		{"a config that does not load", []string{"verify", "-c", missing}, `load config: open ` + missing + `: no such file or directory`, false},
		{"a config without audit_log", []string{"verify", "-c", noAudit}, noAudit + " sets no admin.audit_log", false},
		{"a config whose key file is gone", []string{"verify", "-c", noKey},
			fmt.Sprintf(`admin.audit_key: file %q: no such file or directory`, noKeyFile), false},
		{"a key file that is gone", []string{"verify", "-key-file", missing, path},
			fmt.Sprintf(`-key-file: file %q: no such file or directory`, missing), false},
		{"a checkpoint file that is gone", []string{"verify", "-key-file", keyFile, "-checkpoint-file", missing, path},
			"-checkpoint-file: open " + missing + ": no such file or directory", false},
		{"a log file that is gone", []string{"verify", "-key-file", keyFile, missing},
			"audit verify: open " + missing + ": no such file or directory", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := RunAudit(context.Background(), tc.args, &out)
			switch {
			case tc.usage:
				if !errors.Is(err, ErrUsage) {
					t.Errorf("%v, want a usage error", err)
				}
			case err == nil || errors.Is(err, ErrUsage) || err.Error() != tc.want:
				t.Errorf("%v\nwant: %s", err, tc.want)
			}
		})
	}
}

// TestRunAuditCheckpoint fetches the daemon's checkpoint with `splicer
// audit checkpoint`, keeps it, and proves with it that the log was not cut
// short; a daemon without an audit log answers 404, and the command's own
// mistakes are refused before any request.
func TestRunAuditCheckpoint(t *testing.T) {
	sec, path := newAuditedSecurity(t, AuditOptions{})
	base := serveTCP(t, newTestServer(newFakeSource(), Options{Security: sec}))
	h := newTestServer(newFakeSource(), Options{Security: sec}).Handler()
	auditOps(t, h, 12)
	token := tokenFile(t, adminToken)

	var out strings.Builder
	if err := RunAudit(context.Background(), []string{"checkpoint", "-admin", base, "-token-file", token}, &out); err != nil {
		t.Fatal(err)
	}
	cp := sec.audit.Checkpoint()
	if out.String() != cp.String()+"\n" || cp.Seq != 12 {
		t.Fatalf("checkpoint printed %q, want %s", out.String(), cp)
	}
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	os.WriteFile(keyFile, auditKey, 0o600)
	cpFile := filepath.Join(t.TempDir(), "cp")
	os.WriteFile(cpFile, []byte(out.String()), 0o600)
	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := filepath.Join(t.TempDir(), "cut.log")
	os.WriteFile(cut, bytes.Join(lines[:10], nil), 0o600)
	out.Reset()
	err := RunAudit(context.Background(), []string{"verify", "-key-file", keyFile, "-checkpoint-file", cpFile, cut}, &out)
	if want := "audit chain broken: " + cut + ": seq 11: missing: the log ends at seq 10 but the checkpoint is seq 12: the log was cut short"; err == nil || err.Error() != want {
		t.Errorf("verify of a cut log: %v\nwant: %s", err, want)
	}
	if want := cut + ": seq 1-10, 10 records, chain intact\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}

	plain := serveTCP(t, newTestServer(newFakeSource(), Options{}))
	err = RunAudit(context.Background(), []string{"checkpoint", "-admin", plain, "-token-file", token}, &out)
	if want := "admin GET /api/v1/audit/checkpoint: no audit log is configured (admin.audit_log) (HTTP 404)"; err == nil || err.Error() != want {
		t.Errorf("without an audit log: %v\nwant: %s", err, want)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("error %#v is not the API's 404", err)
	}
	err = RunAudit(context.Background(), []string{"checkpoint", "-admin", base, "-token-file", tokenFile(t, viewerToken)}, &out)
	if want := "admin GET /api/v1/audit/checkpoint: role viewer lacks permission audit.read (HTTP 403)"; err == nil || err.Error() != want {
		t.Errorf("as a viewer: %v\nwant: %s", err, want)
	}
	for _, args := range [][]string{{"checkpoint", "-admin", base, "extra"}, {"checkpoint", "-frob"}} {
		if err := RunAudit(context.Background(), args, &out); !errors.Is(err, ErrUsage) {
			t.Errorf("audit %v: %v, want a usage error", args, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "token")
	err = RunAudit(context.Background(), []string{"checkpoint", "-admin", base, "-token-file", missing}, &out)
	if want := fmt.Sprintf(`token file: file %q: no such file or directory`, missing); err == nil || err.Error() != want {
		t.Errorf("a missing token file: %v\nwant: %s", err, want)
	}
}
