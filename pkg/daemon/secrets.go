package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/splicerlb/splicer/health"
	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
)

// ReloadSecrets reads every secret and access file again: the admin users
// file, socket grants, TLS certificate, key and client CAs, the audit key,
// and the health checks' passwords. Each takes effect from the next
// request or probe; each part that fails keeps what it had, and the error
// joins the failures. The data plane is not touched.
//
// It is the secrets step of a reload: the full reload (config diff) calls
// it with the new config once that config is in force; until then it runs
// on SIGHUP with the config the daemon started with.
func (d *Daemon) ReloadSecrets() error {
	var errs []error
	if d.security != nil {
		if err := d.security.Reload(d.cfg); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
		}
	}
	if err := d.checks.reloadSecrets(); err != nil {
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	result := "ok"
	if err != nil {
		result = "error: " + err.Error()
		d.log.Error().Err(err).Msg("secrets reload failed; what could not be read stays as it was")
	} else {
		d.log.Info().Msg("secrets reloaded")
	}
	if d.security != nil {
		// The log shows when access changed, as for any admin action.
		if _, aerr := d.security.Audit().Append(admin.AuditRecord{
			Source: fmt.Sprintf("pid=%d", os.Getpid()), Transport: "signal",
			Action: "secrets.reload", Result: result,
		}); aerr != nil {
			d.log.Error().Err(aerr).Msg("audit record of the secrets reload not written")
		}
	}
	return err
}

// reloadSecretsOnSIGHUP runs ReloadSecrets on every SIGHUP until the
// returned function is called.
//
// This is a stopgap, kept apart so the full reload can take it over: when
// SIGHUP reloads the whole config, this hook goes and the reload calls
// ReloadSecrets itself.
func (d *Daemon) reloadSecretsOnSIGHUP() (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	exited := make(chan struct{})
	go d.watchSIGHUP(hup, done, exited)
	return func() {
		signal.Stop(hup)
		close(done)
		<-exited
	}
}

func (d *Daemon) watchSIGHUP(hup <-chan os.Signal, done <-chan struct{}, exited chan<- struct{}) {
	defer close(exited)
	for {
		select {
		case <-hup:
			d.log.Info().Msg("SIGHUP: reloading secrets")
			_ = d.ReloadSecrets()
		case <-done:
			return
		}
	}
}

// CheckSecrets reads every secret cfg names, as New would, without opening
// anything: for `splicer check`. It returns the problems, each naming its
// setting and never a value; unavailable lists the secrets this process's
// environment lacks (a variable or $CREDENTIALS_DIRECTORY that only the
// daemon's unit sets), which are not problems here.
func CheckSecrets(cfg *config.Config) (problems []error, unavailable []error) {
	sort := func(err error) {
		if errors.Is(err, config.ErrSecretUnavailable) {
			unavailable = append(unavailable, err)
		} else {
			problems = append(problems, err)
		}
	}
	if adminEnabled(cfg) {
		if _, err := admin.LoadAccess(cfg); err != nil {
			for _, e := range unjoin(err) {
				sort(e)
			}
		}
	}
	for _, fe := range cfg.Frontends {
		if fe.Health.Check == config.CheckNone {
			continue
		}
		if _, err := fe.Health.Password.Read(); err != nil {
			sort(fmt.Errorf("frontend %q: health.password: %w", fe.Name, err))
		}
	}
	return problems, unavailable
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// reloadSecrets re-reads the secrets of every checker that has one.
func (hc *checks) reloadSecrets() error {
	var errs []error
	for name, c := range hc.checkers {
		if r, ok := c.(health.SecretReloader); ok {
			if err := r.ReloadSecrets(); err != nil {
				errs = append(errs, fmt.Errorf("frontend %q: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
