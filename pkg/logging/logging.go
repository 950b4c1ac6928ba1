package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// Formats accepted by New.
const (
	FormatJSON    = "json"
	FormatConsole = "console"
)

// Options configures New. The zero value logs JSON at info level to stderr.
type Options struct {
	Level  string    // debug | info | warn | error; "" means info
	Format string    // json | console; "" means json
	Out    io.Writer // nil means os.Stderr
}

// TimeFormat is the form of every timestamp splicer logs: RFC 3339 with
// milliseconds, in UTC (the connection log's too).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// New returns a root logger with a timestamp on every event. It fails on an
// unknown level or format, naming the bad value.
func New(o Options) (zerolog.Logger, error) {
	lvl, err := ParseLevel(o.Level)
	if err != nil {
		return zerolog.Nop(), err
	}
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	switch o.Format {
	case "", FormatJSON:
	case FormatConsole:
		out = consoleWriter(out)
	default:
		return zerolog.Nop(), errFormat(o.Format)
	}
	return zerolog.New(out).Level(lvl).Hook(timestamp{}), nil
}

// timestamp adds the time to every event in TimeFormat. zerolog's own
// Timestamp takes its format from a package variable, which a library
// must not set.
type timestamp struct{}

// Run implements zerolog.Hook.
func (timestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	var buf [len(TimeFormat)]byte
	e.Str(zerolog.TimestampFieldName, string(time.Now().UTC().AppendFormat(buf[:0], TimeFormat)))
}

// consoleWriter is the console form on out: colours only on a terminal,
// so a file or journald gets no escape codes.
func consoleWriter(out io.Writer) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{Out: out, TimeFormat: TimeFormat, TimeLocation: time.UTC, NoColor: !isTerminal(out)}
}

// isTerminal reports whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func errFormat(format string) error {
	return fmt.Errorf("log format %q: must be %q or %q", format, FormatJSON, FormatConsole)
}

// ParseLevel maps a config level name to a zerolog level; "" means info.
func ParseLevel(s string) (zerolog.Level, error) {
	switch s {
	case "debug":
		return zerolog.DebugLevel, nil
	case "", "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("log level %q: must be one of debug, info, warn, error", s)
}

// Component returns a sub-logger whose events carry component=name, so one
// component's lines can be filtered out of the daemon's stream.
func Component(l zerolog.Logger, name string) zerolog.Logger {
	return l.With().Str("component", name).Logger()
}
