package realdb

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// MariaDB is a MariaDB server started by a test.
type MariaDB struct {
	*Process
	Addr   netip.AddrPort
	Dir    string
	client string
}

// MariaDBBinaries returns the server, its install script and its client,
// or skips the test. Older packages name them after MySQL; the server
// lives in /usr/sbin, which not every user has on PATH.
func MariaDBBinaries(t testing.TB) (server, install, client string) {
	t.Helper()
	testutil.SkipShort(t, "MariaDB")
	server = lookFirst("mariadbd", "mysqld", "/usr/sbin/mariadbd", "/usr/sbin/mysqld")
	install = lookFirst("mariadb-install-db", "mysql_install_db")
	client = lookFirst("mariadb", "mysql")
	if server == "" || install == "" || client == "" {
		t.Skip("install MariaDB (Debian package mariadb-server) to run this test")
	}
	return server, install, client
}

// StartMariaDB initialises a data directory, starts MariaDB on a free
// loopback port running initSQL at start (as --init-file, with every
// privilege: create the test's accounts there) and extra options, and
// returns once the server greets.
func StartMariaDB(t testing.TB, initSQL string, extra ...string) *MariaDB {
	t.Helper()
	serverBin, install, client := MariaDBBinaries(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	var asRoot []string // MariaDB runs as root only when told to
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	installDB := exec.CommandContext(ctx, install, append([]string{"--no-defaults", "--datadir=" + data,
		"--skip-test-db", "--auth-root-authentication-method=socket", "--innodb-log-file-size=4M"}, asRoot...)...)
	if out, err := installDB.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", install, err, out)
	}
	initFile := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(initFile, []byte(initSQL), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &MariaDB{Addr: FreePort(t), Dir: dir, client: client}
	args := append([]string{"--no-defaults", "--datadir=" + data,
		"--bind-address=127.0.0.1", "--port=" + strconv.Itoa(int(m.Addr.Port())),
		"--socket=" + filepath.Join(dir, "mysqld.sock"), "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--init-file=" + initFile, "--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M"}, asRoot...)
	m.Process = &Process{t: t, Name: serverBin, Args: append(args, extra...)}
	m.Start()
	testutil.WaitFor(t, 60*time.Second, "MariaDB to take sessions", func() bool {
		_, err := m.query("root", "", "SELECT 1")
		return err == nil
	})
	return m
}

// SQL runs sql through the client as root over the unix socket (socket
// authentication: the test runs as root, or the server's own user) and
// returns the output in batch form without column names.
func (m *MariaDB) SQL(t testing.TB, sql string) string {
	t.Helper()
	out, err := m.query("root", "", sql)
	if err != nil {
		t.Fatalf("%s: %q: %v\n%s", m.client, sql, err, out)
	}
	return out
}

// SQLAs runs sql over TCP as user with password.
func (m *MariaDB) SQLAs(t testing.TB, user, password, sql string) string {
	t.Helper()
	out, err := m.queryTCP(user, password, sql)
	if err != nil {
		t.Fatalf("%s as %s: %q: %v\n%s", m.client, user, sql, err, out)
	}
	return out
}

func (m *MariaDB) query(user, password, sql string) (string, error) {
	return m.exec("--socket="+filepath.Join(m.Dir, "mysqld.sock"), "--user="+user, "--password="+password, "--execute="+sql)
}

func (m *MariaDB) queryTCP(user, password, sql string) (string, error) {
	return m.exec("--protocol=tcp", "--host="+m.Addr.Addr().String(), "--port="+strconv.Itoa(int(m.Addr.Port())),
		"--user="+user, "--password="+password, "--execute="+sql)
}

func (m *MariaDB) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, m.client, append([]string{"--no-defaults", "--batch", "--skip-column-names"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
