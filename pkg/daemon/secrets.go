package daemon

import (
	"errors"
	"fmt"
	"os"
	"regexp"

	"github.com/splicerlb/splicer/health"
	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
)

// reloadSecrets reads every secret and access file of cfg again and
// applies them: the admin users file, socket grants, TLS certificate, key
// and client CAs, the audit key, and the health checks' passwords. It is
// the secrets step of a reload's commit: prepareSecrets read them all
// already, so only a file that changed in between can fail here, and each
// part that fails keeps what it had. The data plane is not touched.
func (d *Daemon) reloadSecrets(cfg *config.Config, access *admin.Access) {
	var errs []error
	if d.security != nil && access != nil {
		if err := d.security.Apply(cfg, access); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
		}
	}
	if err := d.checks.reloadSecrets(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Error().Err(err).Msg("secrets reload failed; what could not be read stays as it was")
	}
}

// auditReload records a reload that came by signal, not through the admin
// API (which audits its own requests), so the audit log shows when access
// may have changed.
func (d *Daemon) auditReload(result string) {
	if d.security == nil {
		return
	}
	if _, err := d.security.Audit().Append(admin.AuditRecord{
		Source: fmt.Sprintf("pid=%d", os.Getpid()), Transport: "signal",
		Action: "reload", Result: result,
	}); err != nil {
		d.log.Error().Err(err).Msg("audit record of the reload not written")
	}
}

// SecretProblem is a secret or access file that cannot be used, as
// CheckSecrets reports it: Setting is the indexed path of the setting that
// names it ("admin.users_file", "frontend[2].health.password"), which
// config.SettingLine places in the config file; Err names the setting,
// the source and the reason, never the value.
type SecretProblem struct {
	Setting string
	Err     error
}

// Error returns Err's message, which names the setting already.
func (p *SecretProblem) Error() string { return p.Err.Error() }

// Unwrap returns Err.
func (p *SecretProblem) Unwrap() error { return p.Err }

// adminSetting finds the admin setting an error of admin.LoadAccess is
// about: each starts with its name ("admin.tls_key: ...").
var adminSetting = regexp.MustCompile(`^admin\.[a-z_]+`)

// CheckSecrets reads every secret cfg names, as New would, without opening
// anything: for `splicer check`. It returns the problems, each naming its
// setting and never a value; unavailable lists the secrets this process's
// environment lacks (a variable or $CREDENTIALS_DIRECTORY that only the
// daemon's unit sets), which are not problems here. Every error is a
// *SecretProblem.
func CheckSecrets(cfg *config.Config) (problems []error, unavailable []error) {
	sort := func(setting string, err error) {
		err = &SecretProblem{Setting: setting, Err: err}
		if errors.Is(err, config.ErrSecretUnavailable) {
			unavailable = append(unavailable, err)
		} else {
			problems = append(problems, err)
		}
	}
	if adminEnabled(cfg) {
		if _, err := admin.LoadAccess(cfg); err != nil {
			for _, e := range unjoin(err) {
				sort(adminSetting.FindString(e.Error()), e)
			}
		}
	}
	for i, fe := range cfg.Frontends {
		if err := healthSecretError(fe); err != nil {
			sort(fmt.Sprintf("frontend[%d].health.password", i), err)
		}
	}
	return problems, unavailable
}

// healthSecretErrors reads every health check password cfg names and
// returns why each that could not be read failed.
func healthSecretErrors(cfg *config.Config) []error {
	var errs []error
	for _, fe := range cfg.Frontends {
		if err := healthSecretError(fe); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// healthSecretError reads fe's health check password, if it uses one.
func healthSecretError(fe config.Frontend) error {
	if fe.Health.Check == config.CheckNone {
		return nil
	}
	if _, err := fe.Health.Password.Read(); err != nil {
		return fmt.Errorf("frontend %q: health.password: %w", fe.Name, err)
	}
	return nil
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
	hc.mu.Lock()
	defer hc.mu.Unlock()
	var errs []error
	for name, c := range hc.running {
		if r, ok := c.checker.(health.SecretReloader); ok {
			if err := r.ReloadSecrets(); err != nil {
				errs = append(errs, fmt.Errorf("frontend %q: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
