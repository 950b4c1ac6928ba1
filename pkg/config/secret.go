package config

import (
	"fmt"
	"os"
	"strings"
)

// Password returns the password the health probes send (postgres, mysql,
// redis), read now from password_file or the variable password_env; "" when
// neither is set. Callers read it once, when they build their checker.
func (h Health) Password() (string, error) {
	return readSecret("health", h.PasswordFile, h.PasswordEnv)
}

// Password returns the Sentinels' AUTH password, read now from
// password_file or the variable password_env; "" when neither is set.
func (d *Discovery) Password() (string, error) {
	return readSecret("discovery", d.PasswordFile, d.PasswordEnv)
}

// readSecret is the one place a secret named in the config is read: from
// file (without its trailing line break) or from the environment variable
// env, at most one of which validation lets through. A source that is set
// but yields nothing is an error, so a missing secret fails closed instead
// of probing without one. table prefixes the key names in errors.
func readSecret(table, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s.password_file: %w", table, err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", fmt.Errorf("%s.password_file %s is empty", table, file)
		}
		return pw, nil
	case env != "":
		pw := os.Getenv(env)
		if pw == "" {
			return "", fmt.Errorf("%s.password_env: variable %s is unset or empty", table, env)
		}
		return pw, nil
	}
	return "", nil
}
