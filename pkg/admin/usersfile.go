package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
)

// usersEdit changes the users file's lines; users is what they parse to
// (empty for a new file). It returns the new lines.
type usersEdit func(lines []string, users *Users) ([]string, error)

// updateUsersFile applies edit to the users file at path and replaces the
// file in one rename, so the daemon reads either the old file or the new
// one, never half of one. Concurrent `splicer user` runs are serialised by
// a lock on the file's directory. A new file is created with mode 0600; an
// existing one keeps its mode, owner and group (as far as this process may
// set them), so a daemon running as another user can still read it. A
// symbolic link is followed and its target replaced.
func updateUsersFile(path string, edit usersEdit) error {
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		target, err = path, nil
	}
	if err != nil {
		// EvalSymlinks's errors do not all name the path.
		return fmt.Errorf("users file %s: %w", path, err)
	}
	dir := filepath.Dir(target)
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()

	var old fs.FileInfo
	users := &Users{}
	var lines []string
	data, err := config.ReadSecretFile(target)
	switch {
	case err == nil:
		if old, err = os.Stat(target); err != nil {
			return fmt.Errorf("users file: %w", err)
		}
		if users, err = ParseUsers(data, target); err != nil {
			return err
		}
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("users file: %w", err)
	}
	lines, err = edit(lines, users)
	if err != nil {
		return err
	}
	content := []byte(strings.Join(lines, "\n") + "\n")
	if _, err := ParseUsers(content, target); err != nil {
		return fmt.Errorf("refusing to write a users file that does not parse: %w", err)
	}
	return replaceFile(target, content, old)
}

// lockDir takes an exclusive flock on dir until the returned function runs.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	if err := ignoringEINTR(func() error { return unix.Flock(int(d.Fd()), unix.LOCK_EX) }); err != nil {
		d.Close()
		return nil, fmt.Errorf("users file: locking %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// replaceFile writes content to a temporary file beside target, gives it
// old's mode and ownership (0600 when old is nil), syncs it and renames it
// over target, then syncs the directory so the rename survives a crash.
func replaceFile(target string, content []byte, old fs.FileInfo) (err error) {
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".*")
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	mode := fs.FileMode(0o600)
	if old != nil {
		mode = old.Mode().Perm()
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			// Keeping the owner needs privilege; without it the file is
			// ours, which is what it was when we could read it.
			if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("users file: %w", err)
			}
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if _, err := tmp.Write(content); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// AddUser adds a user to the users file at path (created if missing) and
// returns the user's new token, which exists nowhere else: the file keeps
// only its digest. With certOnly the user gets no token (digest "-") and
// authenticates only by a TLS client certificate; the token is then "".
func AddUser(path, name string, role Role, certOnly bool) (string, error) {
	if err := checkUserName(name); err != nil {
		return "", err
	}
	user := User{Name: name, Role: role}
	token := ""
	if !certOnly {
		token, user.Digest = NewToken()
		user.HasToken = true
	}
	err := updateUsersFile(path, func(lines []string, users *Users) ([]string, error) {
		if old, ok := users.Lookup(name); ok {
			return nil, fmt.Errorf("user %q already exists (line %d); `splicer user rotate` gives it a new token", name, old.Line)
		}
		return append(lines, formatUser(user)), nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// RotateUser gives a user a new token, returned, and invalidates the old
// one (once the daemon reloads).
func RotateUser(path, name string) (string, error) {
	token, digest := NewToken()
	err := updateUsersFile(path, func(lines []string, users *Users) ([]string, error) {
		u, ok := users.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("user %q: %w", name, errNoUser)
		}
		u.Digest, u.HasToken = digest, true
		lines[u.Line-1] = formatUser(u)
		return lines, nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// RemoveUser removes a user from the users file.
func RemoveUser(path, name string) error {
	return updateUsersFile(path, func(lines []string, users *Users) ([]string, error) {
		u, ok := users.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("user %q: %w", name, errNoUser)
		}
		return slices.Delete(lines, u.Line-1, u.Line), nil
	})
}

// LoadUsers reads and parses the users file at path with the same checks
// as the daemon: only its owner may read or change it.
func LoadUsers(path string) (*Users, error) {
	data, err := config.ReadSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("admin.users_file: %w", err)
	}
	return ParseUsers(data, path)
}

const userUsage = "splicer user add [-file USERS | -c CONFIG] [-cert-only] NAME ROLE | " +
	"rotate [-file USERS | -c CONFIG] NAME | remove [-file USERS | -c CONFIG] NAME | list [-file USERS | -c CONFIG]"

// RunUser is `splicer user add|rotate|remove|list`, on the users file named
// by -file or by admin.users_file of the config given with -c. add and
// rotate print the new token on stdout, and nothing else, so that a script
// can capture it; it is shown this once. The daemon picks the change up on
// SIGHUP (or a reload).
func RunUser(_ context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", ErrUsage, userUsage)
	}
	action := args[0]
	fs := newFlagSet("user " + action)
	file := fs.String("file", "", "users `FILE`")
	cfgFile := fs.String("c", "", "config `FILE` whose admin.users_file to use")
	certOnly := fs.Bool("cert-only", false, "add: no token; the user logs in with a TLS client certificate only")
	rest, err := parseArgs(fs, args[1:])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	path, cfg, err := usersFilePath(*file, *cfgFile)
	if err != nil {
		return err
	}
	want := map[string]int{"add": 2, "rotate": 1, "remove": 1, "list": 0}
	n, known := want[action]
	if !known || len(rest) != n {
		return fmt.Errorf("%w: %s", ErrUsage, userUsage)
	}
	switch action {
	case "add":
		role, err := ParseRole(rest[1])
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
		if cfg != nil {
			if err := checkRoleScope(role, cfg); err != nil {
				return err
			}
		}
		token, err := AddUser(path, rest[0], role, *certOnly)
		if err != nil || token == "" {
			return err
		}
		_, err = fmt.Fprintln(stdout, token)
		return err
	case "rotate":
		token, err := RotateUser(path, rest[0])
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, token)
		return err
	case "remove":
		return RemoveUser(path, rest[0])
	}
	users, err := LoadUsers(path)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tLOGIN")
	for _, u := range users.List() {
		login := "token"
		if !u.HasToken {
			login = "certificate"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, login)
	}
	return tw.Flush()
}

// usersFilePath picks the users file from -file or from the config of -c
// (returned too, to check role scopes against its frontends).
func usersFilePath(file, cfgFile string) (string, *config.Config, error) {
	switch {
	case file != "" && cfgFile != "":
		return "", nil, fmt.Errorf("%w: give -file or -c, not both", ErrUsage)
	case file != "":
		return file, nil, nil
	case cfgFile == "":
		return "", nil, fmt.Errorf("%w: name the users file with -file USERS or -c CONFIG", ErrUsage)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		return "", nil, err
	}
	if cfg.Admin.UsersFile == "" {
		return "", nil, fmt.Errorf("%s sets no admin.users_file", cfgFile)
	}
	return cfg.Admin.UsersFile, cfg, nil
}

// checkRoleScope refuses a role scoped to a frontend cfg lacks.
func checkRoleScope(role Role, cfg *config.Config) error {
	for _, name := range role.Frontends {
		if !slices.ContainsFunc(cfg.Frontends, func(f config.Frontend) bool { return f.Name == name }) {
			return fmt.Errorf("role %s: %s has no frontend %q", role, cfg.File, name)
		}
	}
	return nil
}
