package config

import "time"

// Builder assembles a Config in code, for tests and embedders. It fills the
// same raw settings as the TOML decoder, so defaults and validation are
// identical, and a value passed to a setter counts as set explicitly exactly
// like a key in a file (a UDP frontend given Retries is refused, say).
//
// Setters never fail and never panic: every mistake, such as an unparsable
// address, is reported by Build. Global setters affect the whole config
// whenever they are called; frontend settings go on the FrontendBuilder
// returned by Frontend. A Builder is not safe for concurrent use.
//
//	cfg, err := config.New().Workers(2).
//		Frontend("pg").Listen("127.0.0.1:0").Strategy(config.StrategyLeastConn).
//		Backend("127.0.0.1:5432", 1).
//		Backend("127.0.0.1:5433", 2).BackendOpts(config.BackendOptions{Backup: true}).
//		HealthCheck(config.CheckPostgres).HealthUser("probe").
//		Build()
type Builder struct {
	raw rawConfig
	// misuse holds problems with the calls themselves, such as BackendOpts
	// before any Backend.
	misuse problems
}

// New starts an empty configuration; Build fills in every default.
func New() *Builder {
	return &Builder{}
}

// Build returns the validated config, or an *Error listing every problem
// (without file or line). The Builder may be changed and built again.
func (b *Builder) Build() (*Config, error) {
	ps := &problems{list: append([]Problem(nil), b.misuse.list...)}
	cfg := resolve(&b.raw, ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	cfg.Warnings = ps.sortedWarnings()
	return cfg, nil
}

func (b *Builder) global() *rawGlobal {
	if b.raw.Global == nil {
		b.raw.Global = &rawGlobal{}
	}
	return b.raw.Global
}

func (b *Builder) log() *rawLog {
	if b.raw.Log == nil {
		b.raw.Log = &rawLog{}
	}
	return b.raw.Log
}

func (b *Builder) admin() *rawAdmin {
	if b.raw.Admin == nil {
		b.raw.Admin = &rawAdmin{}
	}
	return b.raw.Admin
}

// CPUAffinity sets [global] cpu_affinity: "auto", a CPU list such as
// "0-3", or "" to pin nothing.
func (b *Builder) CPUAffinity(spec string) *Builder {
	b.global().CPUAffinity = &stringSetting{v: spec}
	return b
}

// Workers sets [global] workers; 0 means one per CPU.
func (b *Builder) Workers(n int) *Builder {
	b.global().Workers = &intSetting{v: n}
	return b
}

// MaxConnections sets [global] max_connections.
func (b *Builder) MaxConnections(n int) *Builder {
	b.global().MaxConnections = &intSetting{v: n}
	return b
}

// MaxPipes sets [global] max_pipes.
func (b *Builder) MaxPipes(n int) *Builder {
	b.global().MaxPipes = &intSetting{v: n}
	return b
}

// PipeSize sets [global] pipe_size, in bytes.
func (b *Builder) PipeSize(bytes int) *Builder {
	b.global().PipeSize = &sizeSetting{v: bytes}
	return b
}

// BufferSize sets [global] buffer_size, in bytes.
func (b *Builder) BufferSize(bytes int) *Builder {
	b.global().BufferSize = &sizeSetting{v: bytes}
	return b
}

// ShutdownTimeout sets [global] shutdown_timeout.
func (b *Builder) ShutdownTimeout(d time.Duration) *Builder {
	b.global().ShutdownTimeout = &durationSetting{v: d}
	return b
}

// LogLevel sets [log] level.
func (b *Builder) LogLevel(level string) *Builder {
	b.log().Level = &stringSetting{v: level}
	return b
}

// LogFormat sets [log] format.
func (b *Builder) LogFormat(format string) *Builder {
	b.log().Format = &stringSetting{v: format}
	return b
}

// AdminListen sets [admin] listen; "" disables the admin port.
func (b *Builder) AdminListen(addr string) *Builder {
	b.admin().Listen = &stringSetting{v: addr}
	return b
}

// Frontend starts a new [[frontend]] with the given name; the returned
// FrontendBuilder sets its keys.
func (b *Builder) Frontend(name string) *FrontendBuilder {
	b.raw.Frontends = append(b.raw.Frontends, rawFrontend{Name: &stringSetting{v: name}})
	return &FrontendBuilder{b: b, index: len(b.raw.Frontends) - 1}
}
