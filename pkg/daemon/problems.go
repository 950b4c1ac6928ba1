package daemon

import (
	"errors"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
)

// LogProblems logs each config problem of err as one event at level with
// msg: the file, line and field apart and the message as error, so a JSON
// log keeps them machine-readable. An err that is not a config error is one
// event with its text as error.
func LogProblems(log zerolog.Logger, level zerolog.Level, err error, msg string) {
	var ce *config.Error
	if !errors.As(err, &ce) {
		log.WithLevel(level).Err(err).Msg(msg)
		return
	}
	logProblemList(log, level, ce.Problems, msg)
}

func logProblemList(log zerolog.Logger, level zerolog.Level, ps []config.Problem, msg string) {
	for _, p := range ps {
		ev := log.WithLevel(level)
		if p.File != "" {
			ev = ev.Str("file", p.File)
		}
		if p.Line > 0 {
			ev = ev.Int("line", p.Line)
		}
		if p.Path != "" {
			ev = ev.Str("field", p.Path)
		}
		ev.Str("error", p.Msg).Msg(msg)
	}
}
