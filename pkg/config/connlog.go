package config

import (
	"math"
	"path/filepath"
	"time"
)

// The connection log: [log] connections_file and connections_buffer, and
// each frontend's log_connections, log_sample and log_slow.

const (
	// Every connection that did not end cleanly is worth a line, and in
	// normal operation those are few; logging every connection is a
	// choice an operator makes knowing the volume.
	defaultLogConnections = LogErrors
	defaultLogSample      = 1.0
	// 1024 lines of about 300 bytes per loop absorb a burst of a few
	// milliseconds at full connection rate while the writer is busy,
	// for 300 KiB per loop.
	defaultConnectionsBuffer = 1024
	minConnectionsBuffer     = 16
	maxConnectionsBuffer     = 1 << 20
)

func resolveConnectionLog(l *Log, r *rawLog, sc scope) {
	l.ConnectionsFile = get(sc, "connections_file", r.ConnectionsFile, "")
	l.ConnectionsBuffer = get(sc, "connections_buffer", r.ConnectionsBuffer, defaultConnectionsBuffer)
}

func validateConnectionLog(l Log, sc scope) {
	if l.ConnectionsFile != "" && !filepath.IsAbs(l.ConnectionsFile) {
		sc.addf("connections_file", `must be an absolute path, or "" for the daemon's log; got %q`, l.ConnectionsFile)
	}
	sc.between("connections_buffer", l.ConnectionsBuffer, minConnectionsBuffer, maxConnectionsBuffer)
}

// validateFrontendLog checks a frontend's connection log keys. A key that
// could not change what is logged is refused rather than ignored:
// log_sample samples only the clean lines of "all", and neither it nor
// log_slow means anything with "off".
func validateFrontendLog(f *Frontend, r *rawFrontend, sc scope) {
	sc.oneOf("log_connections", f.LogConnections, LogAll, LogErrors, LogOff)
	if math.IsNaN(f.LogSample) || f.LogSample <= 0 || f.LogSample > 1 {
		sc.addf("log_sample", "must be above 0 and at most 1 (the fraction of clean connections logged), got %v", f.LogSample)
	}
	if f.LogSlow < 0 {
		sc.addf("log_slow", "must not be negative, got %v", f.LogSlow)
	}
	if r.LogSample != nil && r.LogSample.err == nil && f.LogConnections != LogAll {
		sc.addf("log_sample", `only applies with log_connections = "all": error lines are never sampled`)
	}
	if r.LogSlow != nil && r.LogSlow.err == nil && f.LogConnections == LogOff {
		sc.addf("log_slow", `does not apply with log_connections = "off"`)
	}
}

// LogConnections sets the frontend's log_connections: LogAll, LogErrors or
// LogOff.
func (f *FrontendBuilder) LogConnections(which string) *FrontendBuilder {
	f.raw().LogConnections = &stringSetting{v: which}
	return f
}

// LogSample sets log_sample.
func (f *FrontendBuilder) LogSample(fraction float64) *FrontendBuilder {
	f.raw().LogSample = &floatSetting{v: fraction}
	return f
}

// LogSlow sets log_slow.
func (f *FrontendBuilder) LogSlow(d time.Duration) *FrontendBuilder {
	f.raw().LogSlow = &durationSetting{v: d}
	return f
}

// ConnectionsFile sets [log] connections_file.
func (b *Builder) ConnectionsFile(path string) *Builder {
	b.log().ConnectionsFile = &stringSetting{v: path}
	return b
}

// ConnectionsBuffer sets [log] connections_buffer.
func (b *Builder) ConnectionsBuffer(lines int) *Builder {
	b.log().ConnectionsBuffer = &intSetting{v: lines}
	return b
}
