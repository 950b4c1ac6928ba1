package stats

import "time"

// RuntimeStateVersion is the version of the RuntimeState document; a
// reader refuses any other.
const RuntimeStateVersion = 1

// RuntimeState is what an operator changed at runtime and what must
// survive a restart or an upgrade: each backend's administrative state and
// runtime weight. The daemon writes it to global.state_file and serves it
// at GET /api/v1/state: one document, the same in both places.
type RuntimeState struct {
	Version   int                    `json:"version"`
	Written   time.Time              `json:"written_at"`
	Frontends []FrontendRuntimeState `json:"frontends"`
}

// FrontendRuntimeState is the runtime state of one frontend's backends.
type FrontendRuntimeState struct {
	Name     string                `json:"name"`
	Backends []BackendRuntimeState `json:"backends"`
}

// BackendRuntimeState is one backend's runtime state, with the config it
// applies on top of: a restart applies the state only to a backend of the
// same name and address, and the weight only while the config still gives
// ConfiguredWeight, so a config edit made meanwhile wins.
type BackendRuntimeState struct {
	Name             string `json:"name"`
	Address          string `json:"address"`
	State            string `json:"state"` // StateReady, StateDrain or StateMaint
	Weight           int    `json:"weight"`
	ConfiguredWeight int    `json:"configured_weight"`
}
