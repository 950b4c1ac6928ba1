package realdb

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// pgHBA lets the superuser "splicer" in without a password (and stream
// WAL to replicas), the user "md5probe" with md5, and every other user
// with SCRAM-SHA-256, over loopback TCP only.
const pgHBA = `local all all trust
host all splicer 127.0.0.1/32 trust
host replication splicer 127.0.0.1/32 trust
host all md5probe 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
`

// Postgres is a PostgreSQL server started by a test: superuser "splicer",
// authentication as pgHBA says (create "md5probe" with password_encryption
// = 'md5' for an md5 login), fsync off, listening on Addr.
type Postgres struct {
	*Process
	Addr netip.AddrPort
	Bin  string // directory of the server binaries
	Dir  string // holds Data and the unix socket
	Data string
}

// PostgresBin returns the bin directory of the newest installed
// PostgreSQL, or skips the test.
func PostgresBin(t testing.TB) string {
	t.Helper()
	testutil.SkipShort(t, "PostgreSQL")
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	for i := len(found) - 1; i >= 0; i-- { // the newest version sorts last
		dir := filepath.Dir(found[i])
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir
		}
	}
	t.Skip("install postgresql (Debian package postgresql) to run this test")
	return ""
}

// PostgresCredential returns who runs PostgreSQL, which refuses to run as
// root: this process's user, or when root the Debian "postgres" account.
func PostgresCredential(t testing.TB) *syscall.Credential {
	return unprivileged(t, "postgres")
}

// StartPostgres initialises a cluster and starts it as a primary; it
// returns once the server accepts sessions.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := PostgresBin(t)
	cred := PostgresCredential(t)
	dir := OwnedTempDir(t, cred)
	data := filepath.Join(dir, "data")
	run(t, cred, filepath.Join(bin, "initdb"), "-D", data, "-U", "splicer", "--auth=trust", "--no-sync", "-E", "UTF8")
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := os.Chown(filepath.Join(data, "pg_hba.conf"), int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	p := &Postgres{Bin: bin, Dir: dir, Data: data}
	p.start(t, cred)
	return p
}

// start runs the server on a fresh port and waits until it takes sessions.
func (p *Postgres) start(t testing.TB, cred *syscall.Credential) {
	t.Helper()
	p.Addr = FreePort(t)
	p.Process = &Process{t: t, Name: filepath.Join(p.Bin, "postgres"), Cred: cred, Args: []string{
		"-D", p.Data, "-p", strconv.Itoa(int(p.Addr.Port())), "-k", p.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_buffers=16MB",
		"-c", "wal_receiver_status_interval=1s", "-c", "max_connections=60",
	}}
	p.Start()
	p.WaitReady(t)
}

// Restart starts the server again on its address after it stopped.
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	p.Start()
	p.WaitReady(t)
}

// WaitReady waits until the server takes a session.
func (p *Postgres) WaitReady(t testing.TB) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, "PostgreSQL at "+p.Addr.String()+" to take sessions", func() bool {
		_, err := p.query("SELECT 1")
		return err == nil
	})
}

// StartReplica clones p with pg_basebackup -R into a new cluster and
// starts it as a streaming replica of p.
func (p *Postgres) StartReplica(t testing.TB) *Postgres {
	t.Helper()
	cred := p.Cred
	dir := OwnedTempDir(t, cred)
	data := filepath.Join(dir, "data")
	run(t, cred, filepath.Join(p.Bin, "pg_basebackup"), "-h", p.Addr.Addr().String(), "-p", strconv.Itoa(int(p.Addr.Port())),
		"-U", "splicer", "-D", data, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	r := &Postgres{Bin: p.Bin, Dir: dir, Data: data}
	r.start(t, cred)
	testutil.WaitFor(t, 30*time.Second, "the replica to stream", func() bool {
		out, err := r.query("SELECT status FROM pg_stat_wal_receiver")
		return err == nil && out == "streaming"
	})
	return r
}

// SQL runs sql as the superuser and returns its output, unaligned and
// without headers; it fails the test on error.
func (p *Postgres) SQL(t testing.TB, sql string) string {
	t.Helper()
	out, err := p.query(sql)
	if err != nil {
		t.Fatalf("psql on %s: %q: %v", p.Addr, sql, err)
	}
	return out
}

// query runs sql with psql.
func (p *Postgres) query(sql string) (string, error) {
	conn := "host=" + p.Addr.Addr().String() + " port=" + strconv.Itoa(int(p.Addr.Port())) +
		" user=splicer dbname=postgres connect_timeout=5"
	cmd := exec.Command(filepath.Join(p.Bin, "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conn, "-c", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", &psqlError{err: err, out: strings.TrimSpace(string(out))}
	}
	return strings.TrimSpace(string(out)), nil
}

type psqlError struct {
	err error
	out string
}

func (e *psqlError) Error() string { return e.err.Error() + ": " + e.out }
