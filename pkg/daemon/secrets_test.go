package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// TestCheckSecrets reads every secret a config names, as `splicer check`
// does: a secret that is wrong is a problem naming its setting; one this
// shell cannot see (an unset variable, a systemd credential) is only
// unavailable here; no value is ever in a message.
func TestCheckSecrets(t *testing.T) {
	t.Setenv(config.CredentialsDirectoryEnv, "")
	os.Unsetenv(config.CredentialsDirectoryEnv)
	dir := t.TempDir()
	open := filepath.Join(dir, "users-open")
	os.WriteFile(open, []byte("x"), 0o644)
	os.Chmod(open, 0o644)
	missing := filepath.Join(dir, "missing")
	cfg, err := config.New().RuntimeDir(dir).AdminListen("127.0.0.1:0").AdminUsersFile(open).
		AdminAuditLog(filepath.Join(dir, "audit.log"), config.Secret{Env: "SPLICER_TEST_UNSET_KEY"}).
		Frontend("a").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).HealthCheck("postgres").HealthUser("u").
		HealthPassword(config.Secret{File: missing}).
		Frontend("b").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).HealthCheck("postgres").HealthUser("u").
		HealthPassword(config.Secret{Credential: "pg-probe"}).
		Frontend("c").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).HealthCheck("none").Build()
	if err != nil {
		t.Fatal(err)
	}
	problems, unavailable := CheckSecrets(cfg)
	texts := func(errs []error) string {
		var s []string
		for _, e := range errs {
			s = append(s, e.Error())
		}
		return strings.Join(s, "\n")
	}
	wantProblems := `admin.users_file: file "` + open + `": mode 0644 lets users other than its owner`
	wantProblems2 := `frontend "a": health.password: file "` + missing + `": no such file or directory`
	if len(problems) != 2 || !strings.HasPrefix(problems[0].Error(), wantProblems) || problems[1].Error() != wantProblems2 {
		t.Errorf("problems:\n%s\nwant\n%s...\n%s", texts(problems), wantProblems, wantProblems2)
	}
	wantUnavailable := "admin.audit_key: env SPLICER_TEST_UNSET_KEY: variable unset: not available in this environment\n" +
		`frontend "b": health.password: credential pg-probe: $CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with LoadCredential=): not available in this environment`
	if got := texts(unavailable); got != wantUnavailable {
		t.Errorf("unavailable:\n%s\nwant\n%s", got, wantUnavailable)
	}
	for _, e := range unavailable {
		if !errors.Is(e, config.ErrSecretUnavailable) {
			t.Errorf("%v is not ErrSecretUnavailable", e)
		}
	}
}

// TestLogProblems logs a config error's problems one event each, with the
// file, line and field apart, and any other error as one event.
func TestLogProblems(t *testing.T) {
	var logs testutil.SyncBuffer
	log := zerolog.New(&logs)
	LogProblems(log, zerolog.ErrorLevel, &config.Error{Problems: []config.Problem{
		{File: "/etc/splicer/config.toml", Line: 3, Path: "global.workers", Msg: "must be at least 1"},
		{Msg: "no frontends"},
	}}, "config refused")
	LogProblems(log, zerolog.WarnLevel, errors.New("disk on fire"), "cannot load")
	want := `{"level":"error","file":"/etc/splicer/config.toml","line":3,"field":"global.workers","error":"must be at least 1","message":"config refused"}
{"level":"error","error":"no frontends","message":"config refused"}
{"level":"warn","error":"disk on fire","message":"cannot load"}
`
	if logs.String() != want {
		t.Errorf("logged\n%s\nwant\n%s", logs.String(), want)
	}
}
