// Package config holds splicer's configuration: the TOML schema, strict
// decoding, defaults, semantic validation with field paths and line numbers,
// and a fluent Builder for tests and embedders.
//
// A *Config returned by Load, Parse or Builder.Build is complete: every
// default is filled in and every field has been validated, so consumers read
// fields directly and never re-check them.
//
// # How a config is made
//
// There are two ways in, and one way through. Load and Parse decode TOML
// strictly (an unknown key is an error, with a "did you mean" when one is
// close); New returns a Builder whose setters (Frontend returns a
// FrontendBuilder for one [[frontend]]) set the same raw settings a file
// would. Both fill the raw* types (raw.go), where every field is a pointer
// so a key left out is told from one set to its zero value; then the same
// steps run for both: defaults (defaults.go), resolution into the typed
// Config (resolve.go), validation (validate.go) and warnings (warn.go).
//
// Every mistake is collected rather than the first one returned: an
// invalid config gives an *Error holding every Problem, each with its
// file, line and the setting's path as an operator writes it
// (`frontend "pg": backend[2].weight`). What is valid but will not do what
// it seems to, such as a key with no effect, goes to Config.Warnings
// instead. LoadIn also checks the config against what the host allows
// (Environment: open files, pipe and socket buffer limits, capabilities),
// as the daemon and `splicer check` do.
//
// # What it holds
//
// Config has Global (workers, pools, limits, shutdown), Log, Admin (the
// admin port, its users, TLS and audit log), Upgrade, DNS and the
// Frontends, each with its Backends (or a Discovery source), Health and
// PROXY protocol settings. Secrets are never in a Config: a Secret names a
// file, an environment variable or a systemd credential, and Read fetches
// the value when it is needed, so a reload reads it again.
//
// docs/configuration.md documents every key, its default and what is
// valid; a key added here must be added there.
package config
