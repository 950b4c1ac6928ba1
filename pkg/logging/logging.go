// Package logging builds splicer's zerolog loggers.
//
// There is no package-level logger: the daemon builds one Logger from the
// config (or a flag) and hands component sub-loggers down explicitly, so
// tests can capture any component's output and two daemons in one process
// never share state.
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
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339}
	default:
		return zerolog.Nop(), errFormat(o.Format)
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
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
