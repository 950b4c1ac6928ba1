package admin

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The audit log (admin.audit_log) is a file of JSON lines, one per state
// changing or denied request:
//
//	{"seq":7,"time":"...","user":"alice","role":"operator","source":"127.0.0.1:50312",
//	 "transport":"tcp","action":"backend.state","target":"pg/db1","previous":"ready",
//	 "new":"drain","result":"ok","h":"9c1f..."}
//
// h = HMAC-SHA256(key, h_prev || record), where record is the line without
// its h field (the JSON object as written, up to and including the "}" that
// closes it once h is cut out) and h_prev is the previous record's h (32
// zero bytes before seq 1). The first record of a file that continues a
// chain (after a rotation) also carries "prev_h", the h it chains from, so
// that a file verifies on its own once the files before it are deleted.
// Changing a byte, dropping, reordering or inserting a record breaks the
// chain at that record; cutting the tail is detected against a checkpoint
// (the last seq and h) kept elsewhere: GET /api/v1/audit/checkpoint.

// AuditRecord is one line of the audit log. The field order is the line's.
type AuditRecord struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// User, Role and Source say who; User is "" when nobody
	// authenticated.
	User      string `json:"user"`
	Role      string `json:"role"`
	Source    string `json:"source"`
	Transport string `json:"transport"`
	// Action is the route's action ("backend.state"); Target what it acts
	// on ("pg/db1", a connection ID, a path for a denied read).
	Action string `json:"action"`
	Target string `json:"target"`
	// Previous and New are the values before and after a change.
	Previous string `json:"previous"`
	New      string `json:"new"`
	// Result is "ok", "error: ..." or "denied: ...", with the HTTP status
	// for the latter two.
	Result string `json:"result"`
	// PrevHash is set on the first record of a file that continues a
	// chain: the h it chains from, in hex.
	PrevHash string `json:"prev_h,omitempty"`
}

// AuditCheckpoint is the end of the chain: keep it somewhere the audit
// log's writers cannot reach, and `splicer audit verify -checkpoint` proves
// the log was not cut short since.
type AuditCheckpoint struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"h"`
	// File is the live audit file.
	File string `json:"file"`
}

// String writes the checkpoint as -checkpoint takes it: SEQ:HASH.
func (c AuditCheckpoint) String() string { return strconv.FormatUint(c.Seq, 10) + ":" + c.Hash }

// ErrAuditUnavailable wraps every error of Append: the change it was to
// record must be refused.
var ErrAuditUnavailable = errors.New("audit log unavailable")

// AuditOptions are the rotation settings of an Audit.
type AuditOptions struct {
	// MaxSize rotates the file once it reaches this many bytes; 0 never.
	MaxSize int64
	// Keep is how many rotated files (PATH.1 newest ... PATH.Keep) are kept.
	Keep int
}

// Audit appends records to the audit log. Every record is written with one
// write(2) on a file opened O_APPEND and fsynced before Append returns, so
// a record that Append reported is on disk. A nil *Audit records nothing
// and never fails: there is no audit log.
type Audit struct {
	path string
	opts AuditOptions
	now  func() time.Time

	mu  sync.Mutex
	key []byte
	f   *os.File
	// size is the live file's length: where the next record starts.
	size int64
	seq  uint64
	last [sha256.Size]byte // h of record seq
	// chained is true when the next record starts a file but not the
	// chain, and so carries prev_h.
	chained bool
	// broken is set when the file could not be brought back to a
	// record boundary after a failed write; every Append fails then.
	broken error
}

// OpenAudit opens (or creates, mode 0600) the audit log at path and
// continues its chain: the last record, or the last record of PATH.1 when
// the live file is empty, must verify with key. A last record that does not
// (the file was altered, cut by a crash, or written with another key) is an
// error: check the file with `splicer audit verify`, then move it aside to
// start a new chain. The file is locked, so two daemons cannot interleave
// their chains in it.
func OpenAudit(path string, key []byte, opts AuditOptions) (*Audit, error) {
	a := &Audit{path: path, opts: opts, key: bytes.Clone(key), now: time.Now}
	if len(key) == 0 {
		return nil, errors.New("audit log: empty key")
	}
	f, err := openAuditFile(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	a.f, a.size = f, fi.Size()
	from := path
	if a.size == 0 {
		from = rotatedName(path, 1)
	}
	seq, last, err := chainTail(from, key)
	if err != nil {
		f.Close()
		return nil, err
	}
	a.seq, a.last = seq, last
	a.chained = a.size == 0 && seq > 0
	return a, nil
}

// openAuditFile opens path for appending and takes an exclusive lock on it.
func openAuditFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("audit log %s: in use by another process", path)
		}
		return nil, fmt.Errorf("audit log %s: lock: %w", path, err)
	}
	return f, nil
}

// rotatedName is PATH.n.
func rotatedName(path string, n int) string { return path + "." + strconv.Itoa(n) }

// chainTail returns the last seq and h of the file at path, verified with
// key; (0, zero) for a file that is missing or empty.
func chainTail(path string, key []byte) (uint64, [sha256.Size]byte, error) {
	var zero [sha256.Size]byte
	data, err := readTail(path, auditTail)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(data) == 0 {
		return 0, zero, nil
	}
	fail := func(format string, args ...any) (uint64, [sha256.Size]byte, error) {
		return 0, zero, fmt.Errorf("audit log %s: %s; check it with `splicer audit verify`, then move it aside to start a new chain",
			path, fmt.Sprintf(format, args...))
	}
	if errors.Is(err, errLongLine) {
		return fail("the last record is longer than %d bytes", auditTail)
	}
	if err != nil {
		return 0, zero, fmt.Errorf("audit log: %w", err)
	}
	if data[len(data)-1] != '\n' {
		return fail("the last record is cut short")
	}
	lines := bytes.Split(data[:len(data)-1], []byte("\n"))
	last := lines[len(lines)-1]
	rec, body, h, err := parseAuditLine(last)
	if err != nil {
		return fail("the last record is unreadable: %v", err)
	}
	var prev [sha256.Size]byte
	switch {
	case rec.PrevHash != "":
		if prev, err = decodeHash(rec.PrevHash); err != nil {
			return fail("seq %d: prev_h: %v", rec.Seq, err)
		}
	case rec.Seq == 1:
	case len(lines) >= 2:
		before, _, beforeH, err := parseAuditLine(lines[len(lines)-2])
		if err != nil || before.Seq != rec.Seq-1 {
			return fail("the record before seq %d is missing or unreadable", rec.Seq)
		}
		prev = beforeH
	default:
		return fail("seq %d: the record before it is missing", rec.Seq)
	}
	if auditMAC(key, prev, body) != h {
		return fail("seq %d does not verify with admin.audit_key (altered, or written with another key)", rec.Seq)
	}
	return rec.Seq, h, nil
}

// auditTail is how much of the end of a log OpenAudit reads to find its
// last two records: far more than a record takes (a request's target is
// bounded by the admin server's 16KiB of headers).
const auditTail = 1 << 20

// errLongLine is readTail's error for a tail that holds no whole line.
var errLongLine = errors.New("no whole line in the tail read")

// readTail returns the file's last limit bytes, cut to start at a line,
// or errLongLine when the last line (with or without its line break) is
// longer than limit: it must not pass for an empty file.
func readTail(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(fi.Size()-limit, 0)
	data := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(data, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if off > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 || i == len(data)-1 {
			return nil, errLongLine
		}
		data = data[i+1:]
	}
	return data, nil
}

// auditMAC is HMAC-SHA256(key, prev || body).
func auditMAC(key []byte, prev [sha256.Size]byte, body []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, key)
	m.Write(prev[:])
	m.Write(body)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// hashSuffix is how every line ends: ,"h":"<64 hex digits>"}
const (
	hashPrefix = `,"h":"`
	hashSuffix = `"}`
	hashLen    = len(hashPrefix) + 2*sha256.Size + len(hashSuffix)
)

// parseAuditLine splits a line (without its newline) into the record, the
// bytes its h covers, and h.
func parseAuditLine(line []byte) (AuditRecord, []byte, [sha256.Size]byte, error) {
	var h [sha256.Size]byte
	var rec AuditRecord
	n := len(line)
	if n < hashLen+1 || string(line[n-hashLen:n-hashLen+len(hashPrefix)]) != hashPrefix ||
		string(line[n-len(hashSuffix):]) != hashSuffix {
		return rec, nil, h, errors.New(`the line does not end with its hash ,"h":"..."}`)
	}
	var err error
	if h, err = decodeHash(string(line[n-hashLen+len(hashPrefix) : n-len(hashSuffix)])); err != nil {
		return rec, nil, h, err
	}
	body := append(bytes.Clone(line[:n-hashLen]), '}')
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, nil, h, fmt.Errorf("not a record: %v", err)
	}
	if dec.More() {
		return rec, nil, h, errors.New("not a record: more than one JSON value")
	}
	return rec, body, h, nil
}

func decodeHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return h, fmt.Errorf("hash %q is not %d hex digits", s, 2*sha256.Size)
	}
	copy(h[:], b)
	return h, nil
}

// Append writes rec as the next record, filling in Seq, Time and, when it
// starts a file, PrevHash. It returns the record written, or an error
// wrapping ErrAuditUnavailable when the record is not on disk: the change
// it describes must then be refused. A failed write is cut back off the
// file, so a later Append (once the disk has room again) continues a clean
// chain.
func (a *Audit) Append(rec AuditRecord) (AuditRecord, error) {
	if a == nil {
		return rec, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken != nil {
		return rec, fmt.Errorf("%w: %w", ErrAuditUnavailable, a.broken)
	}
	rec.Seq = a.seq + 1
	rec.Time = a.now().UTC()
	rec.PrevHash = ""
	if a.chained {
		rec.PrevHash = hex.EncodeToString(a.last[:])
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return rec, fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	h := auditMAC(a.key, a.last, body)
	line := make([]byte, 0, len(body)+hashLen)
	line = append(line, body[:len(body)-1]...)
	line = append(line, hashPrefix...)
	line = hex.AppendEncode(line, h[:])
	line = append(line, hashSuffix+"\n"...)
	if err := a.write(line); err != nil {
		return rec, fmt.Errorf("%w: %s: %w", ErrAuditUnavailable, a.path, err)
	}
	a.seq, a.last, a.chained = rec.Seq, h, false
	if a.opts.MaxSize > 0 && a.size >= a.opts.MaxSize {
		if err := a.rotate(); err != nil {
			// The record is written; the next one cannot be.
			a.broken = fmt.Errorf("rotating %s: %w", a.path, err)
		}
	}
	return rec, nil
}

// write appends line and syncs it; on failure it truncates the file back
// to where the line started.
func (a *Audit) write(line []byte) error {
	n, err := a.f.Write(line)
	if err == nil {
		err = a.f.Sync()
	}
	if err == nil {
		a.size += int64(n)
		return nil
	}
	if terr := a.f.Truncate(a.size); terr != nil {
		a.broken = fmt.Errorf("after a failed write (%v), cutting the partial record failed: %w", err, terr)
	}
	return err
}

// rotate renames PATH.i to PATH.i+1 (dropping what passes Keep) and PATH
// to PATH.1, and starts a new PATH whose first record carries prev_h.
func (a *Audit) rotate() error {
	if err := a.f.Close(); err != nil {
		return err
	}
	a.f = nil
	if a.opts.Keep == 0 {
		if err := os.Remove(a.path); err != nil {
			return err
		}
	} else {
		if err := os.Remove(rotatedName(a.path, a.opts.Keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for i := a.opts.Keep - 1; i >= 1; i-- {
			if err := os.Rename(rotatedName(a.path, i), rotatedName(a.path, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if err := os.Rename(a.path, rotatedName(a.path, 1)); err != nil {
			return err
		}
	}
	f, err := openAuditFile(a.path)
	if err != nil {
		return err
	}
	a.f, a.size, a.chained = f, 0, true
	return nil
}

// SetKey makes key the HMAC key of the records to come. A key that differs
// from the current one starts a new file first (rotation), so each file is
// verified with one key and the new file's prev_h links the two.
func (a *Audit) SetKey(key []byte) error {
	if a == nil {
		return nil
	}
	if len(key) == 0 {
		return errors.New("audit log: empty key")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if hmac.Equal(key, a.key) {
		return nil
	}
	if a.size > 0 {
		if err := a.rotate(); err != nil {
			a.broken = fmt.Errorf("rotating %s for a new key: %w", a.path, err)
			return a.broken
		}
	}
	a.key = bytes.Clone(key)
	return nil
}

// Checkpoint returns the end of the chain: the last seq and its h.
func (a *Audit) Checkpoint() AuditCheckpoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AuditCheckpoint{Seq: a.seq, Hash: hex.EncodeToString(a.last[:]), File: a.path}
}

// Close closes the file; Append fails afterwards.
func (a *Audit) Close() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken == nil {
		a.broken = errors.New("closed")
	}
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
