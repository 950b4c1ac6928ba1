package logging

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// FileMode is the permission of a log file splicer creates: client
// addresses are not for every user of the machine; the group (adm, say)
// may read.
const FileMode = 0o640

// File is a log file opened for appending that can be reopened at its
// path, as logrotate needs: once the file has been renamed, Reopen sends
// the next writes to a new file at the path, and no write is lost in the
// switch. Safe for concurrent use.
type File struct {
	path string
	f    atomic.Pointer[os.File]
}

// OpenFile opens (creating it with FileMode if need be) the log file at
// path for appending.
func OpenFile(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	lf := &File{path: path}
	lf.f.Store(f)
	return lf, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}

// Path is the path the file was opened at.
func (l *File) Path() string { return l.path }

// Write appends p. A write that raced with Reopen and found the old file
// closed (it then wrote nothing: os.File refuses a write once Close has
// begun, and Close waits for the writes under way) is made to the new one,
// as often as reopens overtake it.
func (l *File) Write(p []byte) (int, error) {
	for {
		f := l.f.Load()
		n, err := f.Write(p)
		if errors.Is(err, os.ErrClosed) && l.f.Load() != f {
			continue
		}
		return n, err
	}
}

// Reopen opens the path again and makes it the file written from now on;
// the old file is closed once the writes in progress on it are done. On
// error the old file stays in use.
func (l *File) Reopen() error {
	nf, err := openAppend(l.path)
	if err != nil {
		return err
	}
	return l.f.Swap(nf).Close()
}

// Close closes the file; later writes fail.
func (l *File) Close() error { return l.f.Load().Close() }
