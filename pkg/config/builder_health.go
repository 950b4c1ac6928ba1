package config

import "time"

func (f *FrontendBuilder) health() *rawHealth {
	r := f.raw()
	if r.Health == nil {
		r.Health = &rawHealth{}
	}
	return r.Health
}

// HealthCheck sets health.check: one of the Check* constants.
func (f *FrontendBuilder) HealthCheck(kind string) *FrontendBuilder {
	f.health().Check = &stringSetting{v: kind}
	return f
}

// HealthInterval sets health.interval.
func (f *FrontendBuilder) HealthInterval(d time.Duration) *FrontendBuilder {
	f.health().Interval = &durationSetting{v: d}
	return f
}

// HealthTimeout sets health.timeout.
func (f *FrontendBuilder) HealthTimeout(d time.Duration) *FrontendBuilder {
	f.health().Timeout = &durationSetting{v: d}
	return f
}

// HealthFastInterval sets health.fast_interval.
func (f *FrontendBuilder) HealthFastInterval(d time.Duration) *FrontendBuilder {
	f.health().FastInterval = &durationSetting{v: d}
	return f
}

// HealthDownInterval sets health.down_interval.
func (f *FrontendBuilder) HealthDownInterval(d time.Duration) *FrontendBuilder {
	f.health().DownInterval = &durationSetting{v: d}
	return f
}

// HealthRise sets health.rise.
func (f *FrontendBuilder) HealthRise(n int) *FrontendBuilder {
	f.health().Rise = &intSetting{v: n}
	return f
}

// HealthFall sets health.fall.
func (f *FrontendBuilder) HealthFall(n int) *FrontendBuilder {
	f.health().Fall = &intSetting{v: n}
	return f
}

// HealthPassiveFall sets health.passive_fall; 0 disables passive checks.
func (f *FrontendBuilder) HealthPassiveFall(n int) *FrontendBuilder {
	f.health().PassiveFall = &intSetting{v: n}
	return f
}

// HealthPort sets health.port.
func (f *FrontendBuilder) HealthPort(port int) *FrontendBuilder {
	f.health().Port = &intSetting{v: port}
	return f
}

// HealthSend sets health.send.
func (f *FrontendBuilder) HealthSend(text string) *FrontendBuilder {
	f.health().Send = &stringSetting{v: text}
	return f
}

// HealthSendHex sets health.send_hex.
func (f *FrontendBuilder) HealthSendHex(hexBytes string) *FrontendBuilder {
	f.health().SendHex = &stringSetting{v: hexBytes}
	return f
}

// HealthExpect sets health.expect.
func (f *FrontendBuilder) HealthExpect(prefix string) *FrontendBuilder {
	f.health().Expect = &stringSetting{v: prefix}
	return f
}

// HealthExpectRegex sets health.expect_regex.
func (f *FrontendBuilder) HealthExpectRegex(re string) *FrontendBuilder {
	f.health().ExpectRegex = &stringSetting{v: re}
	return f
}

// HealthUser sets health.user.
func (f *FrontendBuilder) HealthUser(user string) *FrontendBuilder {
	f.health().User = &stringSetting{v: user}
	return f
}

// HealthDatabase sets health.database.
func (f *FrontendBuilder) HealthDatabase(db string) *FrontendBuilder {
	f.health().Database = &stringSetting{v: db}
	return f
}

// HealthPassword sets health.password.
func (f *FrontendBuilder) HealthPassword(s Secret) *FrontendBuilder {
	f.health().Password = &secretSetting{v: s}
	return f
}

// HealthPath sets health.path.
func (f *FrontendBuilder) HealthPath(path string) *FrontendBuilder {
	f.health().Path = &stringSetting{v: path}
	return f
}

// HealthStatus sets health.status.
func (f *FrontendBuilder) HealthStatus(code int) *FrontendBuilder {
	f.health().Status = &intSetting{v: code}
	return f
}

// HealthHTTPKeepalive sets health.http_keepalive.
func (f *FrontendBuilder) HealthHTTPKeepalive(on bool) *FrontendBuilder {
	f.health().HTTPKeepalive = &boolSetting{v: on}
	return f
}

// HealthProbeWhenIdleOnly sets health.probe_when_idle_only.
func (f *FrontendBuilder) HealthProbeWhenIdleOnly(on bool) *FrontendBuilder {
	f.health().ProbeWhenIdleOnly = &boolSetting{v: on}
	return f
}
