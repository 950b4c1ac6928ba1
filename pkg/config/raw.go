package config

// The raw* types mirror the TOML schema. Every field is a pointer so that
// defaults and the protocol-specific rules can tell a key that was set from
// one that was left out, per array element. Both the TOML decoder and the
// Builder fill them, so both go through the same defaults and validation.
//
// The toml tags are the schema: unknown-key detection and its "did you mean"
// suggestions read them by reflection.

type rawConfig struct {
	Global    *rawGlobal    `toml:"global"`
	Log       *rawLog       `toml:"log"`
	Admin     *rawAdmin     `toml:"admin"`
	Upgrade   *rawUpgrade   `toml:"upgrade"`
	DNS       *rawDNS       `toml:"dns"`
	Frontends []rawFrontend `toml:"frontend"`
}

type rawGlobal struct {
	Workers         *intSetting      `toml:"workers"`
	MaxConnections  *intSetting      `toml:"max_connections"`
	MaxPipes        *intSetting      `toml:"max_pipes"`
	PipeSize        *sizeSetting     `toml:"pipe_size"`
	BufferSize      *sizeSetting     `toml:"buffer_size"`
	ShutdownTimeout *durationSetting `toml:"shutdown_timeout"`
	CPUAffinity     *stringSetting   `toml:"cpu_affinity"`

	// The daemon's files (daemon.go).
	StateFile  *stringSetting `toml:"state_file"`
	RuntimeDir *stringSetting `toml:"runtime_dir"`
}

type rawLog struct {
	Level  *stringSetting `toml:"level"`
	Format *stringSetting `toml:"format"`

	// The connection log (connlog.go).
	ConnectionsFile   *stringSetting `toml:"connections_file"`
	ConnectionsBuffer *intSetting    `toml:"connections_buffer"`
}

type rawFrontend struct {
	Name            *stringSetting `toml:"name"`
	Listen          *listSetting   `toml:"listen"`
	Protocol        *stringSetting `toml:"protocol"`
	Strategy        *stringSetting `toml:"strategy"`
	MaglevTableSize *intSetting    `toml:"maglev_table_size"`

	MaxConnections *intSetting      `toml:"max_connections"`
	MaxQueue       *intSetting      `toml:"max_queue"`
	QueueTimeout   *durationSetting `toml:"queue_timeout"`

	ConnectTimeout   *durationSetting `toml:"connect_timeout"`
	IdleTimeout      *durationSetting `toml:"idle_timeout"`
	HalfCloseTimeout *durationSetting `toml:"half_close_timeout"`
	Retries          *intSetting      `toml:"retries"`

	TCPKeepalive      *boolSetting     `toml:"tcp_keepalive"`
	KeepaliveIdle     *durationSetting `toml:"keepalive_idle"`
	KeepaliveInterval *durationSetting `toml:"keepalive_interval"`
	KeepaliveCount    *intSetting      `toml:"keepalive_count"`

	Allow                   *listSetting `toml:"allow"`
	Deny                    *listSetting `toml:"deny"`
	MaxConnectionsPerClient *intSetting  `toml:"max_connections_per_client"`
	ConnectionRatePerClient *intSetting  `toml:"connection_rate_per_client"`

	SlowStart *durationSetting `toml:"slow_start"`
	OnDown    *stringSetting   `toml:"on_down"`

	// PROXY protocol (proxy.go).
	SendProxy           *stringSetting   `toml:"send_proxy"`
	SendProxyTLVs       *listSetting     `toml:"send_proxy_tlvs"`
	AcceptProxy         *boolSetting     `toml:"accept_proxy"`
	AcceptProxyFrom     *listSetting     `toml:"accept_proxy_from"`
	AcceptProxyOptional *boolSetting     `toml:"accept_proxy_optional"`
	ProxyHeaderTimeout  *durationSetting `toml:"proxy_header_timeout"`

	// The connection log (connlog.go).
	LogConnections *stringSetting   `toml:"log_connections"`
	LogSample      *floatSetting    `toml:"log_sample"`
	LogSlow        *durationSetting `toml:"log_slow"`

	Responses     *intSetting  `toml:"responses"`
	MaxFlows      *intSetting  `toml:"max_flows"`
	ReceiveBuffer *sizeSetting `toml:"receive_buffer"`

	Health    *rawHealth    `toml:"health"`
	Backends  []rawBackend  `toml:"backend"`
	Discovery *rawDiscovery `toml:"discovery"`
}

type rawHealth struct {
	Check        *stringSetting   `toml:"check"`
	Interval     *durationSetting `toml:"interval"`
	Timeout      *durationSetting `toml:"timeout"`
	FastInterval *durationSetting `toml:"fast_interval"`
	DownInterval *durationSetting `toml:"down_interval"`
	Rise         *intSetting      `toml:"rise"`
	Fall         *intSetting      `toml:"fall"`
	PassiveFall  *intSetting      `toml:"passive_fall"`
	Port         *intSetting      `toml:"port"`

	Send        *stringSetting `toml:"send"`
	SendHex     *stringSetting `toml:"send_hex"`
	Expect      *stringSetting `toml:"expect"`
	ExpectRegex *stringSetting `toml:"expect_regex"`

	User     *stringSetting `toml:"user"`
	Database *stringSetting `toml:"database"`
	Password *secretSetting `toml:"password"`
	// PasswordFile and PasswordEnv are the deprecated spellings of
	// password = { file = ... } and { env = ... }.
	PasswordFile *stringSetting `toml:"password_file"`
	PasswordEnv  *stringSetting `toml:"password_env"`

	Path          *stringSetting `toml:"path"`
	Status        *intSetting    `toml:"status"`
	HTTPKeepalive *boolSetting   `toml:"http_keepalive"`

	ProbeWhenIdleOnly *boolSetting `toml:"probe_when_idle_only"`

	Role        *stringSetting   `toml:"role"`
	MaxLag      *durationSetting `toml:"max_lag"`
	MaxLagBytes *sizeSetting     `toml:"max_lag_bytes"`
}

type rawBackend struct {
	Name           *stringSetting `toml:"name"`
	Address        *stringSetting `toml:"address"`
	Weight         *intSetting    `toml:"weight"`
	MaxConnections *intSetting    `toml:"max_connections"`
	Backup         *boolSetting   `toml:"backup"`
	SendProxy      *stringSetting `toml:"send_proxy"`
}
