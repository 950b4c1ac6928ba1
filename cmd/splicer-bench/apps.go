package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The application benchmarks: redis-benchmark and pgbench, each against a
// real server the harness starts on loopback, reached directly or through
// each proxy. Their load shapes are fixed so that runs compare.
const (
	redisClients  = 50
	redisPipeline = 16
	// redisRequestsPerSecond sizes redis-benchmark's -n from -duration:
	// about a second of work per command at the rates seen here.
	redisRequestsPerSecond = 400_000
	pgClients              = 16
	pgThreads              = 2
	// pgScale is pgbench -i's scale: 100 000 accounts, all cached.
	pgScale = 1
	// appSlack bounds a benchmark client beyond its expected run.
	appSlack = 60 * time.Second
)

// Install hints for the application benchmarks, which are skipped without
// their programs.
const (
	hintRedis    = "install them with: apt-get install redis-server redis-tools"
	hintPostgres = "install them with: apt-get install postgresql postgresql-contrib"
)

// Test names the application backends gate.
const (
	testRedis   = "redis-benchmark pipelined"
	testPgbench = "pgbench select-only"
)

// appTools are the programs of the application benchmarks; a test whose
// programs are missing is skipped, with the reason in unavailable.
type appTools struct {
	redisServer, redisBenchmark string
	pgBin                       string // directory of initdb, postgres and pgbench
	unavailable                 map[string]string
}

// findAppTools locates redis-server, redis-benchmark and the newest
// PostgreSQL's initdb, postgres and pgbench.
func findAppTools() appTools {
	a := appTools{unavailable: map[string]string{}}
	var missing []string
	for _, p := range []struct {
		name string
		path *string
	}{{"redis-server", &a.redisServer}, {"redis-benchmark", &a.redisBenchmark}} {
		var err error
		if *p.path, err = exec.LookPath(p.name); err != nil {
			missing = append(missing, p.name)
		}
	}
	if len(missing) > 0 {
		a.unavailable[testRedis] = strings.Join(missing, " and ") + " not found on PATH; " + hintRedis
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	for i := len(found) - 1; i >= 0 && a.pgBin == ""; i-- { // the newest sorts last
		dir := filepath.Dir(found[i])
		if fileExists(filepath.Join(dir, "initdb")) && fileExists(filepath.Join(dir, "pgbench")) {
			a.pgBin = dir
		}
	}
	if a.pgBin == "" {
		a.unavailable[testPgbench] = "no PostgreSQL with initdb, postgres and pgbench under /usr/lib/postgresql; " + hintPostgres
	}
	return a
}

// startRedis starts redis-server without persistence on a free loopback
// port.
func (r *runner) startRedis(ctx context.Context) error {
	ports, err := freePorts("tcp", 1)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(r.tmp, "redis-")
	if err != nil {
		return err
	}
	argv := []string{r.apps.redisServer, "--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--maxclients", "10000"}
	p, err := startProcess("redis-server", argv, nil)
	if err != nil {
		return err
	}
	if err := p.waitListening(ctx, startTimeout, "tcp", ports[0]); err != nil {
		p.stop()
		return p.failure(err)
	}
	r.redis, r.back.redis = p, loopback(ports[0])
	return nil
}

// startPostgres initialises a cluster in a directory of its own (as the
// "postgres" account when the harness runs as root: PostgreSQL refuses
// root), starts it on a free loopback port with fsync off, and fills
// pgbench's tables.
func (r *runner) startPostgres(ctx context.Context) error {
	cred, err := unprivileged("postgres")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "splicer-bench-pg-")
	if err != nil {
		return err
	}
	r.dirs = append(r.dirs, dir)
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(dir, "data")
	if err := runAs(ctx, cred, filepath.Join(r.apps.pgBin, "initdb"), "-D", data, "-U", "bench", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
		return err
	}
	ports, err := freePorts("tcp", 1)
	if err != nil {
		return err
	}
	argv := []string{filepath.Join(r.apps.pgBin, "postgres"), "-D", data, "-p", strconv.Itoa(ports[0]), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "shared_buffers=64MB", "-c", "max_connections=100"}
	p, err := startProcessAs("postgres", argv, nil, cred)
	if err != nil {
		return err
	}
	r.postgres = p
	if err := p.waitListening(ctx, 30*time.Second, "tcp", ports[0]); err != nil {
		return p.failure(err)
	}
	addr := loopback(ports[0])
	if err := r.waitPostgres(ctx, addr); err != nil {
		return p.failure(err)
	}
	r.back.postgres = addr
	return runAs(ctx, nil, filepath.Join(r.apps.pgBin, "pgbench"), append(pgConn(addr), "-i", "-q", "-s", strconv.Itoa(pgScale), "postgres")...)
}

// waitPostgres polls pg_isready until the server at addr takes sessions:
// it listens a moment before it has finished starting up.
func (r *runner) waitPostgres(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := exec.CommandContext(ctx, filepath.Join(r.apps.pgBin, "pg_isready"), append(pgConn(addr), "-q", "-d", "postgres")...).Run()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL at %s did not take sessions: %w", addr, err)
		case <-tick.C:
		}
	}
}

// unprivileged returns the credential of account when the harness runs as
// root, nil otherwise.
func unprivileged(account string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(account)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root, and the %q account to run it as: %w", account, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("account %q: %w", account, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// runAs runs a set-up command to completion, as cred when not nil; its
// output comes back in the error when it fails.
func runAs(ctx context.Context, cred *syscall.Credential, argv0 string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, appSlack)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv0, args...)
	cmd.Dir = os.TempDir()
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(argv0), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pgConn is pgbench's connection options for addr.
func pgConn(addr string) []string {
	host, port, _ := strings.Cut(addr, ":")
	return []string{"-h", host, "-p", port, "-U", "bench"}
}

// redisTest runs redis-benchmark's SET and GET with redisClients
// connections pipelining redisPipeline commands each.
func redisTest(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
	n := max(int(r.opts.duration.Seconds()*redisRequestsPerSecond), 100_000)
	host, port, _ := strings.Cut(in.redisAddr, ":")
	var out []byte
	cpu, charged, err := proxyCPU(in, func() error {
		ctx, cancel := context.WithTimeout(ctx, 2*r.opts.duration+appSlack)
		defer cancel()
		var err error
		cmd := exec.CommandContext(ctx, r.apps.redisBenchmark, "-h", host, "-p", port, "-c", strconv.Itoa(redisClients),
			"-P", strconv.Itoa(redisPipeline), "-n", strconv.Itoa(n), "-t", "set,get", "--csv")
		if out, err = cmd.Output(); err != nil {
			return fmt.Errorf("redis-benchmark: %w", err)
		}
		return nil
	})
	if err != nil {
		return measurement{}, err
	}
	rates, err := parseRedisCSV(out)
	if err != nil {
		return measurement{}, err
	}
	set, okSet := rates["SET"]
	get, okGet := rates["GET"]
	if !okSet || !okGet {
		return measurement{}, fmt.Errorf("redis-benchmark printed no SET or GET rate: %q", out)
	}
	m := measurement{values: map[metric]float64{redisSetRate: set, redisGetRate: get}}
	if charged {
		m.values[redisCPU] = micros(cpu) / float64(2*n)
	}
	return m, nil
}

// parseRedisCSV reads redis-benchmark --csv: a header line, then one line
// per test whose first two fields are its name and requests per second.
func parseRedisCSV(b []byte) (map[string]float64, error) {
	rd := csv.NewReader(bytes.NewReader(b))
	rd.FieldsPerRecord = -1
	rates := map[string]float64{}
	for {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return rates, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse redis-benchmark CSV: %w", err)
		}
		if len(rec) < 2 || rec[0] == "test" {
			continue
		}
		v, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return nil, fmt.Errorf("parse redis-benchmark CSV: %s rate %q: %w", rec[0], rec[1], err)
		}
		rates[rec[0]] = v
	}
}

// pgbenchTest runs pgbench's built-in select-only script with prepared
// statements, pgClients connections on pgThreads threads.
func pgbenchTest(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
	secs := max(int(math.Ceil(r.opts.duration.Seconds())), 1)
	var out []byte
	cpu, charged, err := proxyCPU(in, func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+appSlack)
		defer cancel()
		args := append(pgConn(in.pgAddr), "-n", "-S", "-M", "prepared", "-c", strconv.Itoa(pgClients),
			"-j", strconv.Itoa(pgThreads), "-T", strconv.Itoa(secs), "postgres")
		cmd := exec.CommandContext(ctx, filepath.Join(r.apps.pgBin, "pgbench"), args...)
		var err error
		if out, err = cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pgbench: %w: %s", err, firstLine(string(out)))
		}
		return nil
	})
	if err != nil {
		return measurement{}, err
	}
	tps, txs, err := parsePgbench(out)
	if err != nil {
		return measurement{}, err
	}
	m := measurement{values: map[metric]float64{pgTPS: tps}}
	if charged && txs > 0 {
		m.values[pgCPU] = micros(cpu) / float64(txs)
	}
	return m, nil
}

// parsePgbench reads pgbench's summary: the transactions processed and
// the rate without the initial connection time.
func parsePgbench(b []byte) (tps float64, txs int64, err error) {
	var haveTPS, haveTxs bool
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "number of transactions actually processed: "); ok {
			done, _, _ := strings.Cut(v, "/")
			if txs, err = strconv.ParseInt(strings.TrimSpace(done), 10, 64); err != nil {
				return 0, 0, fmt.Errorf("parse pgbench: %q: %w", line, err)
			}
			haveTxs = true
		}
		if v, ok := strings.CutPrefix(line, "tps = "); ok {
			num, _, _ := strings.Cut(v, " ")
			if tps, err = strconv.ParseFloat(num, 64); err != nil {
				return 0, 0, fmt.Errorf("parse pgbench: %q: %w", line, err)
			}
			haveTPS = true
		}
	}
	if !haveTPS || !haveTxs {
		return 0, 0, fmt.Errorf("pgbench printed no tps or transaction count: %q", b)
	}
	return tps, txs, nil
}

// probeApps checks that a Redis PING and a PostgreSQL SSLRequest are
// answered through the instance's application routes.
func (in *instance) probeApps(ctx context.Context) error {
	if in.redisAddr != "" {
		if err := exchange(ctx, in.redisAddr, []byte("*1\r\n$4\r\nPING\r\n"), "+PONG\r\n"); err != nil {
			return fmt.Errorf("redis PING: %w", err)
		}
	}
	if in.pgAddr != "" {
		// SSLRequest: PostgreSQL answers one byte, S or N.
		req := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
		if err := exchange(ctx, in.pgAddr, req, "N"); err != nil {
			return fmt.Errorf("PostgreSQL SSLRequest: %w", err)
		}
	}
	return nil
}

// exchange connects to addr, writes req and expects want back.
func exchange(ctx context.Context, addr string, req []byte, want string) error {
	dialer := net.Dialer{Timeout: opTimeout}
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	if _, err := c.Write(req); err != nil {
		return err
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}
