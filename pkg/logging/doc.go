// Package logging builds splicer's zerolog loggers.
//
// There is no package-level logger: the daemon builds one Logger from the
// config (or a flag) and hands component sub-loggers down explicitly, so
// tests can capture any component's output and two daemons in one process
// never share state.
//
// The pieces: New builds a fixed logger from Options (level, format: JSON
// or console, destination); NewOutput builds an Output instead, whose
// level and format a reload can change while every logger built on it
// keeps running; Component tags a sub-logger with component=NAME; File is
// a log file that Reopen moves to a new file at the same path after
// logrotate renamed it (SIGUSR1), losing no write. Timestamps use
// TimeFormat (RFC 3339 with milliseconds, UTC) in every format.
package logging
