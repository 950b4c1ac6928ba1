package config

import "time"

// Upgrade holds how a binary upgrade treats open connections ([upgrade]).
type Upgrade struct {
	// Handoff hands the established connections and UDP flows over to
	// the new process, sockets and all, instead of draining them in the
	// old one.
	Handoff bool
	// HandoffTimeout bounds the hand-over: connections not handed by then
	// (a peer that never reads what waits for it) drain in the old
	// process as at a shutdown.
	HandoffTimeout time.Duration
}

// Defaults of [upgrade]: an L4 connection is two sockets and some
// counters, so nothing is gained by draining; the bound leaves room for
// slow readers while an upgrade stays quick.
const (
	defaultHandoff        = true
	defaultHandoffTimeout = 10 * time.Second
)

type rawUpgrade struct {
	Handoff        *boolSetting     `toml:"handoff"`
	HandoffTimeout *durationSetting `toml:"handoff_timeout"`
}

func resolveUpgrade(r *rawUpgrade, ps *problems) Upgrade {
	if r == nil {
		r = &rawUpgrade{}
	}
	sc := scope{ps: ps, key: "upgrade", label: "upgrade."}
	u := Upgrade{
		Handoff:        get(sc, "handoff", r.Handoff, defaultHandoff),
		HandoffTimeout: get(sc, "handoff_timeout", r.HandoffTimeout, defaultHandoffTimeout),
	}
	if u.HandoffTimeout <= 0 {
		sc.addf("handoff_timeout", "must be positive, got %v", u.HandoffTimeout)
	}
	return u
}
