package health

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/resp"
	"github.com/splicerlb/splicer/pkg/testutil"
	"github.com/splicerlb/splicer/pkg/testutil/realdb"
)

// TestRealPostgresRoles runs the role probes against a PostgreSQL primary
// and a streaming replica made with pg_basebackup -R: each is told apart,
// authenticated with SCRAM-SHA-256 or md5 as a user without privileges, a
// wrong password is down with the server's refusal, and a replica whose
// replay is paused falls behind max_lag and comes back once it resumes.
func TestRealPostgresRoles(t *testing.T) {
	primary := realdb.StartPostgres(t)
	replica := primary.StartReplica(t)
	primary.SQL(t, "CREATE ROLE probe LOGIN PASSWORD 'pr0be'; SET password_encryption = 'md5'; CREATE ROLE md5probe LOGIN PASSWORD 'md5pw'")
	// Let the roles reach the replica before logging in there.
	testutil.WaitFor(t, 10*time.Second, "the roles on the replica", func() bool {
		return replica.SQL(t, "SELECT count(*) FROM pg_roles WHERE rolname IN ('probe', 'md5probe')") == "2"
	})
	t.Setenv("SPLICER_TEST_PG_PW", "pr0be")
	t.Setenv("SPLICER_TEST_PG_MD5", "md5pw")
	t.Setenv("SPLICER_TEST_PG_BAD", "wrong")
	checker := func(user, env, role string, lag time.Duration) Checker {
		c, err := NewChecker(config.Health{Check: "postgres", User: user, Database: "postgres", Password: config.Secret{Env: env}, Role: role, MaxLag: lag})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		c       Checker
		at      *realdb.Postgres
		ok      bool
		msg     string
		role    string
		timelin uint64
	}{
		{"primary, scram", checker("probe", "SPLICER_TEST_PG_PW", config.RolePrimary, 0), primary, true, "primary, timeline 1", config.RolePrimary, 1},
		{"primary, md5", checker("md5probe", "SPLICER_TEST_PG_MD5", config.RoleAny, 0), primary, true, "primary, timeline 1", config.RolePrimary, 1},
		{"replica wanted on the primary", checker("probe", "SPLICER_TEST_PG_PW", config.RoleReplica, 0), primary, false, "primary, want replica", "", 0},
		{"replica, trust", checker("splicer", "", config.RoleReplica, time.Minute), replica, true, "replica, replay lag 0s", config.RoleReplica, 0},
		{"primary wanted on the replica", checker("probe", "SPLICER_TEST_PG_PW", config.RolePrimary, 0), replica, false, "replica, want primary", "", 0},
		{"login only", checker("probe", "SPLICER_TEST_PG_PW", "", 0), replica, true, "authentication scram-sha-256 succeeded", "", 0},
		{"wrong password", checker("probe", "SPLICER_TEST_PG_BAD", config.RolePrimary, 0), primary, false,
			`server error 28P01 (FATAL): password authentication failed for user "probe"`, "", 0},
		{"no password", checker("probe", "", config.RolePrimary, 0), primary, false,
			"server asks for SCRAM-SHA-256: set health.password", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkResult(t, tc.c, tc.at.Addr, 0, tc.ok, "postgres probe "+tc.at.Addr.String()+": "+tc.msg)
			if r.Role != tc.role || r.Epoch != tc.timelin {
				t.Errorf("Role %q Epoch %d, want %q %d", r.Role, r.Epoch, tc.role, tc.timelin)
			}
		})
	}

	t.Run("lag", func(t *testing.T) {
		c := checker("probe", "SPLICER_TEST_PG_PW", config.RoleReplica, 500*time.Millisecond)
		b := newBackend(t, replica.Addr)
		s, flips := runScheduler(t, c, b)
		settleUp(t, s, b, flips)
		replica.SQL(t, "SELECT pg_wal_replay_pause()")
		primary.SQL(t, "CREATE TABLE lag_marker (at timestamptz DEFAULT now())")
		paused := time.Now()
		// Commits keep arriving while replay is paused, as on a busy
		// primary.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					primary.SQL(t, "INSERT INTO lag_marker DEFAULT VALUES")
				}
			}
		}()
		awaitFlip(t, flips, false)
		close(stop)
		<-done
		t.Logf("replica with replay paused out after %v", time.Since(paused))
		st, _ := s.State(b)
		if !strings.Contains(st.Last.Msg, "above max_lag 500ms") {
			t.Errorf("lagging replica's message %q", st.Last.Msg)
		}
		replica.SQL(t, "SELECT pg_wal_replay_resume()")
		awaitFlip(t, flips, true)
		awaitLast(t, s, b, "postgres probe "+replica.Addr.String()+": replica, replay lag 0s")
	})
}

// TestRealRedisRoles runs the role probe against a redis-server master
// with a password and a replica of it: roles, lag measured against the
// master, a replica whose master is gone (lag unknown: down with
// max_lag_bytes, up without), and REPLICAOF NO ONE making it a master.
func TestRealRedisRoles(t *testing.T) {
	master := realdb.StartRedis(t, "--requirepass", "s3cret")
	replica := realdb.StartRedis(t, "--requirepass", "s3cret", "--masterauth", "s3cret",
		"--replicaof", master.Addr.Addr().String(), strconv.Itoa(int(master.Addr.Port())))
	testutil.WaitFor(t, 20*time.Second, "the replica in sync", func() bool {
		v := replica.Do(t, "ROLE")
		return len(v.Array) == 5 && v.Array[3].Str == "connected"
	})
	t.Setenv("SPLICER_TEST_REDIS_PW", "s3cret")
	checker := func(role string, lag int) Checker {
		c, err := NewChecker(config.Health{Check: "redis", Role: role, MaxLagBytes: lag, Password: config.Secret{Env: "SPLICER_TEST_REDIS_PW"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ma, ra := master.Addr.String(), replica.Addr.String()
	checkResult(t, checker(config.RolePrimary, 0), master.Addr, 0, true, "redis probe "+ma+": master")
	checkResult(t, checker(config.RoleReplica, 0), master.Addr, 0, false, "redis probe "+ma+": master, want replica")
	checkResult(t, checker(config.RolePrimary, 0), replica.Addr, 0, false, "redis probe "+ra+": replica of "+ma+" (connected), want primary")
	for i := range 50 {
		master.Do(t, "SET", "k", strings.Repeat("v", i))
	}
	laggard := checker(config.RoleReplica, 1<<20)
	testutil.WaitFor(t, 20*time.Second, "the replica caught up", func() bool {
		return probeResult(t, laggard, replica).Msg == "redis probe "+ra+": replica of "+ma+" (connected), 0 bytes behind"
	})

	master.Stop(syscall.SIGTERM)
	testutil.WaitFor(t, 20*time.Second, "the replica to lose its master", func() bool {
		return !probeResult(t, laggard, replica).OK
	})
	r := probeResult(t, laggard, replica)
	if !strings.HasPrefix(r.Msg, "redis probe "+ra+": replica of "+ma+" (connect") ||
		!strings.HasSuffix(r.Msg, "lag unknown while the link to the master is not connected") {
		t.Errorf("replica without its master: %q", r.Msg)
	}
	if r := probeResult(t, checker(config.RoleReplica, 0), replica); !r.OK {
		t.Errorf("replica without a lag limit went down: %s", r.Msg)
	}

	if v := replica.Do(t, "REPLICAOF", "NO", "ONE"); v.Kind != resp.SimpleString {
		t.Fatalf("REPLICAOF NO ONE: %v", v)
	}
	checkResult(t, checker(config.RolePrimary, 0), replica.Addr, 0, true, "redis probe "+ra+": master")
}

// probeResult probes r once.
func probeResult(t *testing.T, c Checker, r *realdb.Redis) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return c.Check(ctx, r.Addr)
}
