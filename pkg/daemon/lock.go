package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
)

// Listener locks: one instance per address. The data plane binds with
// SO_REUSEPORT, so the kernel lets a second splicer of the same user bind
// the addresses of the first and silently take half its clients. Before
// binding, each instance takes a flock(2) per address in runtime_dir,
// which the kernel drops when the process dies, so no lock outlives its
// holder. Per port and protocol there is one file per IP address, locked
// exclusively, and one per address family's wildcard: a specific address
// holds its family's wildcard file shared, a wildcard address holds it
// exclusively, so 127.0.0.1:7000 and 0.0.0.0:7000 in two instances
// conflict while 127.0.0.1:7000 and 127.0.0.2:7000 do not. Port 0
// addresses, which the kernel makes unique, take no lock. At an upgrade
// the lock fds pass to the new process with the sockets.

// lockWant maps a lock file name to what wants it.
type lockWant map[string]lockNeed

// lockNeed is how a lock is wanted, and for which address (for messages).
type lockNeed struct {
	exclusive bool
	addr      string // "tcp 127.0.0.1:7000"
}

// wantLocks lists the locks cfg's frontends need.
func wantLocks(cfg *config.Config) lockWant {
	want := make(lockWant)
	for _, fe := range cfg.Frontends {
		for _, a := range fe.Listen {
			if a.Port() == 0 {
				continue
			}
			addr := fe.Protocol + " " + a.String()
			wild := lockName(fe.Protocol, a.Port(), anyName(a.Addr()))
			if a.Addr().IsUnspecified() {
				want[wild] = lockNeed{exclusive: true, addr: addr}
				continue
			}
			want[lockName(fe.Protocol, a.Port(), a.Addr().String())] = lockNeed{exclusive: true, addr: addr}
			if _, ok := want[wild]; !ok {
				want[wild] = lockNeed{addr: addr}
			}
		}
	}
	return want
}

func lockName(protocol string, port uint16, host string) string {
	return fmt.Sprintf("%s-%d-%s.lock", protocol, port, host)
}

// anyName names the wildcard of a's family.
func anyName(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return "any4"
	}
	return "any6"
}

// lockFile is one held lock.
type lockFile struct {
	f         *os.File
	exclusive bool
}

// locks holds this process's listener locks.
type locks struct {
	dir    string
	config string // the config file named in the lock files
	mu     sync.Mutex
	held   map[string]*lockFile
}

// newLocks prepares the lock directory, creating it (0750) if missing.
func newLocks(dir, configFile string) (*locks, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("global.runtime_dir: %w", err)
	}
	if abs, err := filepath.Abs(configFile); err == nil && configFile != "" {
		configFile = abs
	}
	return &locks{dir: dir, config: configFile, held: make(map[string]*lockFile)}, nil
}

// lockUpdate is a change of the held locks prepared by update: commit
// releases the locks no longer wanted, abort undoes the new ones.
type lockUpdate struct {
	lk        *locks
	added     []string
	converted []string
	release   []string
}

// update takes the locks in want that are not held (and converts those
// held in the other mode), without blocking. On a conflict it undoes what
// it did and the error names the process holding the address.
func (lk *locks) update(want lockWant) (*lockUpdate, error) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	u := &lockUpdate{lk: lk}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	// Exclusive locks first: their conflicts name a process precisely.
	slices.SortFunc(names, func(a, b string) int {
		if want[a].exclusive != want[b].exclusive {
			if want[a].exclusive {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		excl := want[name].exclusive
		h := lk.held[name]
		var err error
		switch {
		case h != nil && h.exclusive == excl:
			continue
		case h != nil:
			if err = flock(h.f, excl); err == nil {
				h.exclusive = excl
				u.converted = append(u.converted, name)
				if excl {
					lk.stamp(h.f)
				}
			}
		default:
			var f *os.File
			if f, err = lk.take(name, excl); err == nil {
				lk.held[name] = &lockFile{f: f, exclusive: excl}
				u.added = append(u.added, name)
			}
		}
		if err != nil {
			u.abortLocked()
			var le *lockedError
			if errors.As(err, &le) {
				le.holder = holder(le.path)
			}
			return nil, fmt.Errorf("listen %s: %w", want[name].addr, err)
		}
	}
	for name := range lk.held {
		if _, ok := want[name]; !ok {
			u.release = append(u.release, name)
		}
	}
	return u, nil
}

// take opens and locks one lock file.
func (lk *locks) take(name string, excl bool) (*os.File, error) {
	path := filepath.Join(lk.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("listener lock: %w", err)
	}
	if err := flock(f, excl); err != nil {
		f.Close()
		return nil, err
	}
	if excl {
		lk.stamp(f)
	}
	return f, nil
}

// flock locks f without blocking; a lock held elsewhere is errLocked.
func flock(f *os.File, excl bool) error {
	how := unix.LOCK_SH
	if excl {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return &lockedError{path: f.Name()}
		}
		return fmt.Errorf("listener lock %s: %w", f.Name(), os.NewSyscallError("flock", err))
	}
}

// stamp records this process in an exclusively held lock file, for the
// message another instance prints.
func (lk *locks) stamp(f *os.File) {
	text := fmt.Sprintf("pid %d\nconfig %s\n", os.Getpid(), lk.config)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(text), 0)
	}
}

// lockedError is a lock another process holds.
type lockedError struct {
	path   string
	holder string // "splicer pid N (config F)", or "" when unknown
}

func (e *lockedError) Error() string {
	who := e.holder
	if who == "" {
		who = "another splicer"
	}
	return fmt.Sprintf("already served by %s (lock %s): stop that instance first, or replace it with \"splicer upgrade\"", who, e.path)
}

// errLocked is what errors.Is matches a lockedError with.
var errLocked = errors.New("listener lock held by another process")

func (e *lockedError) Is(target error) bool { return target == errLocked }

// holder names the live process that stamped one of the lock files of
// path's port and protocol, the file itself first.
func holder(path string) string {
	dir, base := filepath.Split(path)
	parts := strings.SplitN(base, "-", 3)
	candidates := []string{path}
	if len(parts) == 3 {
		matches, _ := filepath.Glob(filepath.Join(dir, parts[0]+"-"+parts[1]+"-*.lock"))
		candidates = append(candidates, matches...)
	}
	for _, c := range candidates {
		data, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		var pid int
		var cfgFile string
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "pid "); ok {
				pid, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(line, "config "); ok {
				cfgFile = v
			}
		}
		if pid > 0 && pid != os.Getpid() && alive(pid) {
			return fmt.Sprintf("splicer pid %d (config %s)", pid, cfgFile)
		}
	}
	return ""
}

// alive reports whether a process with this pid exists.
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// commit releases the locks no longer wanted.
func (u *lockUpdate) commit() {
	u.lk.mu.Lock()
	defer u.lk.mu.Unlock()
	for _, name := range u.release {
		if h := u.lk.held[name]; h != nil {
			h.f.Close()
			delete(u.lk.held, name)
		}
	}
}

// abort undoes the update.
func (u *lockUpdate) abort() {
	u.lk.mu.Lock()
	defer u.lk.mu.Unlock()
	u.abortLocked()
}

func (u *lockUpdate) abortLocked() {
	for _, name := range u.added {
		if h := u.lk.held[name]; h != nil {
			h.f.Close()
			delete(u.lk.held, name)
		}
	}
	for _, name := range u.converted {
		if h := u.lk.held[name]; h != nil {
			_ = flock(h.f, !h.exclusive)
			h.exclusive = !h.exclusive
		}
	}
	u.added, u.converted = nil, nil
}

// lockFD is a held lock handed to a new process at an upgrade.
type lockFD struct {
	Name      string
	Exclusive bool
	fd        int
}

// dups returns duplicates of every held lock's fd, for an upgrade; the
// caller closes them. A duplicate shares the lock: the new process holds
// it on, the kernel drops it only when the last of them closes.
func (lk *locks) dups() ([]lockFD, error) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	var out []lockFD
	for name, h := range lk.held {
		fd, err := unix.FcntlInt(h.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			for _, l := range out {
				unix.Close(l.fd)
			}
			return nil, os.NewSyscallError("fcntl", err)
		}
		out = append(out, lockFD{Name: name, Exclusive: h.exclusive, fd: fd})
	}
	return out, nil
}

// adopt takes over locks handed over by the previous process, stamping
// the exclusive ones with this process.
func (lk *locks) adopt(fds []lockFD) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	for _, l := range fds {
		f := os.NewFile(uintptr(l.fd), filepath.Join(lk.dir, l.Name))
		if old := lk.held[l.Name]; old != nil {
			old.f.Close()
		}
		lk.held[l.Name] = &lockFile{f: f, exclusive: l.Exclusive}
		if l.Exclusive {
			lk.stamp(f)
		}
	}
}

// releaseAll closes every lock file: the locks go with the last fd of
// each (a new process after an upgrade holds its own).
func (lk *locks) releaseAll() {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	for name, h := range lk.held {
		h.f.Close()
		delete(lk.held, name)
	}
}
