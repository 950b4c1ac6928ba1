package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/splicerlb/splicer/pkg/config"
)

// AuditFileSummary is what VerifyAudit found in one file.
type AuditFileSummary struct {
	Path        string
	First, Last uint64 // seq range; 0, 0 for an empty file
	Records     int
}

// AuditSummary is the result of a verification that passed.
type AuditSummary struct {
	Files []AuditFileSummary
	// First is the first seq of the chain verified: 1, or where the files
	// given start (the files before them having been rotated away).
	First, Last uint64
	Records     int
	LastHash    string
}

// AuditChainError is the first thing wrong with an audit chain: Seq is
// the sequence number at which the chain breaks.
type AuditChainError struct {
	Path string
	Line int
	Seq  uint64
	Msg  string
}

// Error says where: FILE:LINE: seq N: what.
func (e *AuditChainError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: seq %d: %s", e.Path, e.Seq, e.Msg)
	}
	return fmt.Sprintf("%s:%d: seq %d: %s", e.Path, e.Line, e.Seq, e.Msg)
}

// VerifyAudit checks the chain across files, given oldest first (PATH.N
// ... PATH.1 PATH), with the keys the records may be written with: each
// file is verified with the first key that verifies its first record (the
// key changes only at a file boundary). With a checkpoint, the chain must
// reach the checkpoint's seq with the checkpoint's hash: a log cut short
// is detected. The error, an *AuditChainError, names the first sequence
// number that fails.
func VerifyAudit(files []string, keys [][]byte, checkpoint *AuditCheckpoint) (AuditSummary, error) {
	var sum AuditSummary
	var prev [sha256.Size]byte
	var next uint64 // the seq expected next; 0 before the first record
	var cpHash string
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return sum, fmt.Errorf("audit verify: %w", err)
		}
		fs := AuditFileSummary{Path: path}
		var key []byte
		for i, line := range bytes.SplitAfter(data, []byte("\n")) {
			if len(line) == 0 {
				break // after the last line break
			}
			bad := func(seq uint64, format string, args ...any) error {
				return &AuditChainError{Path: path, Line: i + 1, Seq: seq, Msg: fmt.Sprintf(format, args...)}
			}
			if line[len(line)-1] != '\n' {
				return sum, bad(max(next, 1), "the last record is cut short (no line break)")
			}
			rec, body, h, err := parseAuditLine(line[:len(line)-1])
			if err != nil {
				return sum, bad(max(next, 1), "unreadable record: %v", err)
			}
			switch {
			case next == 0 && rec.Seq == 1 && rec.PrevHash == "":
				// The start of the chain.
			case next == 0 && rec.PrevHash != "":
				// Files before this one were rotated away: the chain is
				// anchored on the hash it names.
				if prev, err = decodeHash(rec.PrevHash); err != nil {
					return sum, bad(rec.Seq, "prev_h: %v", err)
				}
			case next == 0:
				return sum, bad(rec.Seq, "the chain does not start here (seq 1, or a file's first record with prev_h); give the files before it")
			case rec.Seq != next:
				return sum, bad(next, "not found where expected (found seq %d): a record was removed, moved or inserted", rec.Seq)
			case rec.PrevHash != "" && i > 0:
				return sum, bad(rec.Seq, "prev_h in the middle of a file")
			case rec.PrevHash != "" && rec.PrevHash != hex.EncodeToString(prev[:]):
				return sum, bad(rec.Seq, "prev_h does not match the last record of the file before")
			}
			if i == 0 {
				if key = pickKey(keys, prev, body, h); key == nil {
					return sum, bad(rec.Seq, "does not verify with the key given (altered, or written with another key)")
				}
			}
			if auditMAC(key, prev, body) != h {
				return sum, bad(rec.Seq, "hash mismatch: the record was altered")
			}
			if fs.Records == 0 {
				fs.First = rec.Seq
			}
			if sum.Records == 0 {
				sum.First = rec.Seq
			}
			fs.Last, fs.Records = rec.Seq, fs.Records+1
			sum.Records++
			prev, next = h, rec.Seq+1
			if checkpoint != nil && rec.Seq == checkpoint.Seq {
				cpHash = hex.EncodeToString(h[:])
			}
		}
		sum.Files = append(sum.Files, fs)
	}
	if next > 0 {
		sum.Last = next - 1
		sum.LastHash = hex.EncodeToString(prev[:])
	}
	if checkpoint != nil {
		last := files[len(files)-1]
		switch {
		case checkpoint.Seq == 0:
			// An empty log's checkpoint: anything extends it.
		case sum.Last < checkpoint.Seq:
			return sum, &AuditChainError{Path: last, Seq: sum.Last + 1,
				Msg: fmt.Sprintf("missing: the log ends at seq %d but the checkpoint is seq %d: the log was cut short", sum.Last, checkpoint.Seq)}
		case cpHash == "":
			return sum, &AuditChainError{Path: files[0], Seq: checkpoint.Seq, Msg: "the checkpoint's record is before the files given"}
		case cpHash != checkpoint.Hash:
			return sum, &AuditChainError{Path: last, Seq: checkpoint.Seq, Msg: "does not match the checkpoint's hash"}
		}
	}
	return sum, nil
}

func pickKey(keys [][]byte, prev [sha256.Size]byte, body []byte, h [sha256.Size]byte) []byte {
	for _, k := range keys {
		if auditMAC(k, prev, body) == h {
			return k
		}
	}
	return nil
}

// ParseCheckpoint reads a checkpoint written as SEQ:HASH, or the JSON of
// GET /api/v1/audit/checkpoint.
func ParseCheckpoint(s string) (AuditCheckpoint, error) {
	var cp AuditCheckpoint
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		if err := json.Unmarshal([]byte(s), &cp); err != nil {
			return cp, fmt.Errorf("checkpoint: %w", err)
		}
	} else {
		seq, hash, ok := strings.Cut(s, ":")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil {
			return cp, fmt.Errorf("checkpoint %q: want SEQ:HASH", s)
		}
		cp.Seq, cp.Hash = n, hash
	}
	if _, err := decodeHash(cp.Hash); err != nil {
		return cp, fmt.Errorf("checkpoint: %w", err)
	}
	return cp, nil
}

// auditFiles lists the files of the audit log at path, oldest first, as
// far as they exist.
func auditFiles(path string, keep int) []string {
	var files []string
	for i := keep; i >= 1; i-- {
		if _, err := os.Stat(rotatedName(path, i)); err == nil {
			files = append(files, rotatedName(path, i))
		}
	}
	return append(files, path)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

const auditUsage = "splicer audit verify [-c CONFIG | -key-file PATH]... [-checkpoint SEQ:HASH | -checkpoint-file FILE] [FILE...] | " +
	"splicer audit checkpoint [-admin ADDR] [-token-file FILE]"

// RunAudit is `splicer audit verify` and `splicer audit checkpoint`.
//
// verify checks the chain of the files given (oldest first), or with -c and
// no file, of admin.audit_log and its rotated files. The key comes from the
// config's admin.audit_key (-c) or from -key-file, which may be repeated
// for a log whose key was changed. It prints one line per file and the
// chain's end, and fails naming the first bad sequence number.
//
// checkpoint prints the running daemon's SEQ:HASH, to keep elsewhere.
func RunAudit(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", ErrUsage, auditUsage)
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(args[1:], stdout)
	case "checkpoint":
		fs, cf := clientFlags("audit checkpoint")
		rest, err := parseArgs(fs, args[1:])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
		if len(rest) != 0 {
			return fmt.Errorf("%w: %s", ErrUsage, auditUsage)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		cp, err := c.AuditCheckpoint(ctx)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, cp)
		return err
	}
	return fmt.Errorf("%w: %s", ErrUsage, auditUsage)
}

func runAuditVerify(args []string, stdout io.Writer) error {
	fs := newFlagSet("audit verify")
	cfgFile := fs.String("c", "", "config `FILE`: its admin.audit_key, and its audit log when no FILE is given")
	var keyFiles stringList
	fs.Var(&keyFiles, "key-file", "`PATH` of the key (repeat for a log whose key changed)")
	cpText := fs.String("checkpoint", "", "`SEQ:HASH` the chain must reach")
	cpFile := fs.String("checkpoint-file", "", "`FILE` holding a checkpoint (SEQ:HASH or the JSON of /api/v1/audit/checkpoint)")
	files, err := parseArgs(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	var keys [][]byte
	if *cfgFile != "" {
		cfg, err := config.Load(*cfgFile)
		if err != nil {
			return err
		}
		if cfg.Admin.AuditLog == "" {
			return fmt.Errorf("%s sets no admin.audit_log", *cfgFile)
		}
		key, err := cfg.Admin.AuditKey.Read()
		if err != nil {
			return fmt.Errorf("admin.audit_key: %w", err)
		}
		keys = append(keys, key)
		if len(files) == 0 {
			files = auditFiles(cfg.Admin.AuditLog, cfg.Admin.AuditKeep)
		}
	}
	for _, kf := range keyFiles {
		key, err := config.Secret{File: kf}.Read()
		if err != nil {
			return fmt.Errorf("-key-file: %w", err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 || len(files) == 0 {
		return fmt.Errorf("%w: %s", ErrUsage, auditUsage)
	}
	var cp *AuditCheckpoint
	switch {
	case *cpText != "" && *cpFile != "":
		return fmt.Errorf("%w: give -checkpoint or -checkpoint-file, not both", ErrUsage)
	case *cpText != "" || *cpFile != "":
		text := *cpText
		if *cpFile != "" {
			b, err := os.ReadFile(*cpFile)
			if err != nil {
				return fmt.Errorf("-checkpoint-file: %w", err)
			}
			text = string(b)
		}
		c, err := ParseCheckpoint(text)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
		cp = &c
	}
	sum, err := VerifyAudit(files, keys, cp)
	for _, f := range sum.Files {
		if f.Records == 0 {
			fmt.Fprintf(stdout, "%s: empty\n", f.Path)
			continue
		}
		fmt.Fprintf(stdout, "%s: seq %d-%d, %d records, chain intact\n", f.Path, f.First, f.Last, f.Records)
	}
	if err != nil {
		var ce *AuditChainError
		if errors.As(err, &ce) {
			return fmt.Errorf("audit chain broken: %w", err)
		}
		return err
	}
	note := ""
	if sum.First > 1 {
		note = fmt.Sprintf(" (starts at seq %d: earlier files were rotated away or not given)", sum.First)
	}
	if cp != nil {
		note += fmt.Sprintf("; checkpoint seq %d matches", cp.Seq)
	}
	_, err = fmt.Fprintf(stdout, "OK: %d records, seq %d-%d, last h %s%s\n", sum.Records, sum.First, sum.Last, sum.LastHash, note)
	return err
}
