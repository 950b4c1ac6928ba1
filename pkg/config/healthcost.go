package config

// validateProbeCost checks the keys that make health checks cheaper:
// health.http_keepalive and health.probe_when_idle_only. Each must
// configure something that runs.
func validateProbeCost(f *Frontend, r *rawHealth, sc scope) {
	if r == nil {
		return // neither key set
	}
	h := f.Health
	if r.HTTPKeepalive != nil && r.HTTPKeepalive.err == nil && h.Check != CheckHTTP {
		sc.addf("health.http_keepalive", `only applies to check "http"; got check %q`, h.Check)
	}
	if r.ProbeWhenIdleOnly == nil || r.ProbeWhenIdleOnly.err != nil {
		return
	}
	switch {
	case h.Check == CheckNone:
		sc.addf("health.probe_when_idle_only", `only applies with an active check: check "none" sends no probe to skip`)
	case !h.ProbeWhenIdleOnly:
	case h.Role != "":
		sc.addf("health.probe_when_idle_only", "cannot be combined with health.role: traffic proves a server answers, not which role it has, so role probes must run every interval")
	case f.Protocol == ProtocolUDP && f.Responses == 0:
		sc.addf("health.probe_when_idle_only", "needs replies to prove a backend, and responses = 0 expects none: no probe would ever be skipped")
	}
}
