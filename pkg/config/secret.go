package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Secret names where a secret (a password, a key) is kept; the config never
// holds the value itself. Exactly one field is set, or none for "no secret".
// In TOML it is written in one form everywhere:
//
//	audit_key = { file = "/etc/splicer/audit.key" }
//	password  = { env = "REDIS_PASSWORD" }
//	tls_key   = { credential = "admin-tls-key" }
//
// A setting of this type is read by Read when the daemon starts, when it
// re-reads its secrets (SIGHUP), and by `splicer check`; nothing caches the
// value in a Config. To give a new key this form, declare its raw field as
// *secretSetting and resolve it with get, as admin.audit_key does.
type Secret struct {
	// File is a path; the file must pass ReadSecretFile's checks. Symbolic
	// links are followed (Kubernetes mounts secrets through ..data links).
	File string
	// Env is the name of an environment variable.
	Env string
	// Credential is the name of a systemd credential: the file
	// $CREDENTIALS_DIRECTORY/NAME, provided by LoadCredential= or
	// LoadCredentialEncrypted= in the unit.
	Credential string
}

// CredentialsDirectoryEnv is the variable systemd sets to the directory
// holding a service's credentials.
const CredentialsDirectoryEnv = "CREDENTIALS_DIRECTORY"

// MaxSecretSize bounds a secret read from a file: the largest legitimate
// one, a PEM private key, is a few KiB.
const MaxSecretSize = 64 << 10

// ErrSecretUnavailable is wrapped by Read when the source exists in the
// config but not in this process's environment: an unset variable, or no
// $CREDENTIALS_DIRECTORY. `splicer check`, run from a shell rather than the
// daemon's unit, tells these apart from a broken file.
var ErrSecretUnavailable = errors.New("not available in this environment")

// IsZero reports whether no source is set.
func (s Secret) IsZero() bool { return s == Secret{} }

// String names the source, never the value: `file "/etc/x"`, `env NAME`,
// `credential NAME`, or "none".
func (s Secret) String() string {
	switch {
	case s.File != "":
		return fmt.Sprintf("file %q", s.File)
	case s.Env != "":
		return "env " + s.Env
	case s.Credential != "":
		return "credential " + s.Credential
	}
	return "none"
}

// Read returns the secret's value. A file's or credential's trailing line
// breaks are not part of it; an empty value is an error, since a secret
// that reads as empty is a mistake that must not turn into "no password".
// Errors name the source and what is wrong with it, never the value. The
// zero Secret reads as (nil, nil).
func (s Secret) Read() ([]byte, error) {
	var v []byte
	switch {
	case s.File != "":
		b, err := ReadSecretFile(s.File)
		if err != nil {
			return nil, err
		}
		v = trimLineBreaks(b)
	case s.Env != "":
		e, ok := os.LookupEnv(s.Env)
		if !ok {
			return nil, fmt.Errorf("env %s: variable unset: %w", s.Env, ErrSecretUnavailable)
		}
		v = []byte(e)
	case s.Credential != "":
		dir := os.Getenv(CredentialsDirectoryEnv)
		if dir == "" {
			return nil, fmt.Errorf("credential %s: $%s is not set (systemd sets it for a unit with LoadCredential=): %w",
				s.Credential, CredentialsDirectoryEnv, ErrSecretUnavailable)
		}
		b, err := ReadSecretFile(filepath.Join(dir, s.Credential))
		if err != nil {
			return nil, fmt.Errorf("credential %s: %w", s.Credential, err)
		}
		v = trimLineBreaks(b)
	default:
		return nil, nil
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("%s: the secret is empty", s)
	}
	return v, nil
}

func trimLineBreaks(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// ReadSecretFile reads a file holding a secret, or anything else that
// grants access (the admin users file, a token file), after checking that
// only its owner can use it. The rule is PostgreSQL's for its key file: a
// file owned by this process's user may not be readable or writable by
// group or others (mode 0600 or stricter); a file owned by root may also be
// readable by its group (0640), so root can keep it and grant the service's
// group read access; a file owned by anyone else is refused, since its owner
// could change it. Only root can give its file a group and a mode, so a
// group that may read root's file is root's decision, not an accident of a
// umask; the same file must also pass when root runs `splicer user add` on
// it for a daemon of that group. Symbolic links are followed and the file
// opened is the one checked. It must be a regular file of at most
// MaxSecretSize bytes.
func ReadSecretFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer, hanging check and start; it is refused below as not a
	// regular file. Reads of a regular file ignore the flag.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("file %q: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("file %q: %w", path, err)
	}
	if err := checkPrivate(fi); err != nil {
		return nil, fmt.Errorf("file %q: %w", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("file %q: %w", path, unwrapPathError(err))
	}
	if len(b) > MaxSecretSize {
		return nil, fmt.Errorf("file %q: larger than %d bytes", path, MaxSecretSize)
	}
	return b, nil
}

// checkPrivate applies ReadSecretFile's rule to an open file's metadata.
func checkPrivate(fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("cannot read the file's owner")
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == 0:
		if perm&0o037 != 0 {
			return fmt.Errorf("mode %04o lets users other than its owner (root) and group read or change it; chmod 0640 or stricter", perm)
		}
	case int(st.Uid) == os.Geteuid():
		if perm&0o077 != 0 {
			return fmt.Errorf("mode %04o lets users other than its owner read or change it; chmod 0600", perm)
		}
	default:
		return fmt.Errorf("owned by uid %d, neither this process's user (uid %d) nor root; its owner could change it", st.Uid, os.Geteuid())
	}
	return nil
}

// unwrapPathError drops the *PathError's own copy of the path, which the
// caller's message already names.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// secretSetting is a setting of the Secret form.
type secretSetting = setting[Secret, secretParser]

// secretKinds are the keys of a secret table, in the order they are listed
// in messages.
var secretKinds = []string{"file", "env", "credential"}

// secretForms is how a secret setting must be written.
const secretForms = `{ file = "PATH" }, { env = "NAME" } or { credential = "NAME" }`

// secretParser accepts a table with exactly one of file, env, credential.
// A bare string is refused without repeating it: it may be the secret.
type secretParser struct{}

func (secretParser) parse(data any) (Secret, error) {
	m, ok := data.(map[string]any)
	if !ok {
		return Secret{}, fmt.Errorf("must be %s, got %s; the config names where a secret is kept, never the secret itself",
			secretForms, tomlType(data))
	}
	var s Secret
	var set []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, isString := m[k].(string)
		if !slices.Contains(secretKinds, k) {
			msg := fmt.Sprintf("unknown key %q in a secret", k)
			if hint := closest(k, secretKinds); hint != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", hint)
			}
			return Secret{}, fmt.Errorf("%s; write %s", msg, secretForms)
		}
		if !isString || v == "" {
			return Secret{}, fmt.Errorf("%s: must be a non-empty string", k)
		}
		set = append(set, k)
		switch k {
		case "file":
			s.File = v
		case "env":
			if !validEnvName(v) {
				return Secret{}, fmt.Errorf("env: %q is not a variable name (A-Z a-z 0-9 _, not starting with a digit)", v)
			}
			s.Env = v
		case "credential":
			if strings.ContainsRune(v, '/') || v == "." || v == ".." {
				return Secret{}, fmt.Errorf("credential: %q is not a credential name (no /)", v)
			}
			s.Credential = v
		}
	}
	if len(set) != 1 {
		return Secret{}, fmt.Errorf("must set exactly one of file, env, credential; got %d", len(set))
	}
	return s, nil
}

func validEnvName(s string) bool {
	for i, c := range []byte(s) {
		ok := c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9'
		if !ok {
			return false
		}
	}
	return s != ""
}
