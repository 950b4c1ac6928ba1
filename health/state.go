package health

import "time"

// State is a copy of one backend's health at a point in time, for stats.
type State struct {
	// Up is the current verdict.
	Up bool
	// Last is the latest active probe result (or the passive failure that
	// took the backend down); zero before the first one.
	Last Result
	// LastCheck is when Last was recorded; zero before the first probe.
	LastCheck time.Time
	// LastChange is when Up last flipped; zero when it has not flipped since
	// the scheduler started.
	LastChange time.Time
	// Successes and Failures are the current streaks of consecutive active
	// probe results; at most one is non-zero.
	Successes, Failures int
	// PassiveFailures counts the consecutive failures the data plane
	// reported since the last success, active or passive.
	PassiveFailures int
	// Probes counts the active probes run, and Skipped the probe times
	// probe_when_idle_only let pass because traffic had proved the
	// backend. Connections counts the connections the probes opened (on
	// UDP, sockets): with http keep-alive, far fewer than Probes. All
	// three carry over a reload that keeps the backend.
	Probes, Skipped, Connections uint64
}
