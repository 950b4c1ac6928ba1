package logging

import (
	"io"
	"os"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Output is a log destination whose level and format can change while the
// loggers built on it are in use, so that a config reload applies [log]
// at once to every component. Loggers from Logger pass every event down to
// the debug level; Output drops those below its level. Safe for
// concurrent use.
type Output struct {
	out   io.Writer
	level atomic.Int32                 // a zerolog.Level
	w     atomic.Pointer[formatWriter] // json: out itself; console: a ConsoleWriter on out
}

type formatWriter struct{ io.Writer }

// NewOutput returns an Output writing to o.Out (os.Stderr when nil) at
// o.Level in o.Format; it fails as New does on a bad level or format.
func NewOutput(o Options) (*Output, error) {
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	lo := &Output{out: out}
	if err := lo.Set(o.Level, o.Format); err != nil {
		return nil, err
	}
	return lo, nil
}

// Logger returns a root logger, timestamped, writing through o.
func (o *Output) Logger() zerolog.Logger {
	return zerolog.New(o).Level(zerolog.DebugLevel).Hook(timestamp{})
}

// Destination is the writer o writes to, for lines written in their final
// form (the connection log). zerolog writes each event with one Write, so
// another writer's lines interleave with o's but never split one, as long
// as that writer writes whole lines of at most PIPE_BUF bytes at a time.
func (o *Output) Destination() io.Writer { return o.out }

// Set changes the level and the format; on error (a bad name) nothing
// changes.
func (o *Output) Set(level, format string) error {
	lvl, err := ParseLevel(level)
	if err != nil {
		return err
	}
	var w io.Writer
	switch format {
	case "", FormatJSON:
		w = o.out
	case FormatConsole:
		w = consoleWriter(o.out)
	default:
		return errFormat(format)
	}
	o.w.Store(&formatWriter{w})
	o.level.Store(int32(lvl))
	return nil
}

// Write implements io.Writer for events without a level.
func (o *Output) Write(p []byte) (int, error) { return o.w.Load().Write(p) }

// WriteLevel implements zerolog.LevelWriter: events below the level are
// dropped.
func (o *Output) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < zerolog.Level(o.level.Load()) {
		return len(p), nil
	}
	return o.w.Load().Write(p)
}
