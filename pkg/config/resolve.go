package config

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
)

// resolve turns raw settings into a Config: values are converted, defaults
// fill what was left out, and then the whole is validated. Every problem is
// added to ps; the Config means something only when ps stays empty.
func resolve(raw *rawConfig, ps *problems) *Config {
	cfg := &Config{
		Global:  resolveGlobal(raw.Global, ps),
		Log:     resolveLog(raw.Log, ps),
		Admin:   resolveAdmin(raw.Admin, ps),
		Upgrade: resolveUpgrade(raw.Upgrade, ps),
		DNS:     resolveDNS(scope{ps: ps, key: "dns", label: "dns."}, "", raw.DNS, defaultDNS()),
	}
	for i := range raw.Frontends {
		cfg.Frontends = append(cfg.Frontends, resolveFrontend(&raw.Frontends[i], i, cfg.DNS, ps))
	}
	validate(cfg, raw, ps)
	if cfg.Global.Workers == 0 {
		cfg.Global.Workers = runtime.NumCPU()
	}
	return cfg
}

// get returns a setting's value, or def when it was not set or has the
// wrong type; the latter is reported here, so once.
func get[T any, P parser[T]](sc scope, field string, s *setting[T, P], def T) T {
	switch {
	case s == nil:
		return def
	case s.err != nil:
		sc.addf(field, "%v", s.err)
		return def
	}
	return s.v
}

func resolveGlobal(r *rawGlobal, ps *problems) Global {
	if r == nil {
		r = &rawGlobal{}
	}
	sc := scope{ps: ps, key: "global", label: "global."}
	g := Global{
		Workers:         get(sc, "workers", r.Workers, defaultWorkers),
		MaxConnections:  get(sc, "max_connections", r.MaxConnections, defaultMaxConnections),
		MaxPipes:        get(sc, "max_pipes", r.MaxPipes, defaultMaxPipes),
		PipeSize:        get(sc, "pipe_size", r.PipeSize, defaultPipeSize),
		BufferSize:      get(sc, "buffer_size", r.BufferSize, defaultBufferSize),
		ShutdownTimeout: get(sc, "shutdown_timeout", r.ShutdownTimeout, defaultShutdownTimeout),
	}
	resolveCPUAffinity(&g, r, sc)
	resolveDaemonFiles(&g, r, sc)
	return g
}

func resolveLog(r *rawLog, ps *problems) Log {
	if r == nil {
		r = &rawLog{}
	}
	sc := scope{ps: ps, key: "log", label: "log."}
	l := Log{
		Level:  get(sc, "level", r.Level, defaultLogLevel),
		Format: get(sc, "format", r.Format, defaultLogFormat),
	}
	resolveConnectionLog(&l, r, sc)
	return l
}

// frontendLabel names frontend i for the operator: by name when it has one.
func frontendLabel(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("frontend[%d]", i)
	}
	return fmt.Sprintf("frontend %q", name)
}

func frontendScope(ps *problems, i int, name string) scope {
	return scope{ps: ps, key: fmt.Sprintf("frontend[%d]", i), label: frontendLabel(i, name) + ": "}
}

func resolveFrontend(r *rawFrontend, i int, dns DNS, ps *problems) Frontend {
	name := get(frontendScope(ps, i, ""), "name", r.Name, "")
	sc := frontendScope(ps, i, name)
	protocol := get(sc, "protocol", r.Protocol, defaultProtocol)
	idle := defaultIdleTimeoutTCP
	if protocol == ProtocolUDP {
		idle = defaultIdleTimeoutUDP
	}
	f := Frontend{
		Name:            name,
		Listen:          resolveListen(sc, r.Listen),
		Protocol:        protocol,
		Strategy:        get(sc, "strategy", r.Strategy, defaultStrategy),
		MaglevTableSize: get(sc, "maglev_table_size", r.MaglevTableSize, defaultMaglevTableSize),

		MaxConnections: get(sc, "max_connections", r.MaxConnections, defaultFrontendMaxConnections),
		MaxQueue:       get(sc, "max_queue", r.MaxQueue, defaultMaxQueue),
		QueueTimeout:   get(sc, "queue_timeout", r.QueueTimeout, defaultQueueTimeout),

		ConnectTimeout:   get(sc, "connect_timeout", r.ConnectTimeout, defaultConnectTimeout),
		IdleTimeout:      get(sc, "idle_timeout", r.IdleTimeout, idle),
		HalfCloseTimeout: get(sc, "half_close_timeout", r.HalfCloseTimeout, defaultHalfCloseTimeout),
		Retries:          get(sc, "retries", r.Retries, defaultRetries),

		TCPKeepalive:      get(sc, "tcp_keepalive", r.TCPKeepalive, defaultTCPKeepalive),
		KeepaliveIdle:     get(sc, "keepalive_idle", r.KeepaliveIdle, defaultKeepaliveIdle),
		KeepaliveInterval: get(sc, "keepalive_interval", r.KeepaliveInterval, defaultKeepaliveInterval),
		KeepaliveCount:    get(sc, "keepalive_count", r.KeepaliveCount, defaultKeepaliveCount),

		Allow:                   resolvePrefixes(sc, "allow", r.Allow),
		Deny:                    resolvePrefixes(sc, "deny", r.Deny),
		MaxConnectionsPerClient: get(sc, "max_connections_per_client", r.MaxConnectionsPerClient, defaultPerClientLimit),
		ConnectionRatePerClient: get(sc, "connection_rate_per_client", r.ConnectionRatePerClient, defaultPerClientLimit),

		SlowStart: get(sc, "slow_start", r.SlowStart, defaultSlowStart),
		OnDown:    get(sc, "on_down", r.OnDown, onDownDefault(r)),

		Responses: get(sc, "responses", r.Responses, defaultResponses),
		MaxFlows:  get(sc, "max_flows", r.MaxFlows, defaultMaxFlows),

		ReceiveBuffer: get(sc, "receive_buffer", r.ReceiveBuffer, 0),

		LogConnections: get(sc, "log_connections", r.LogConnections, defaultLogConnections),
		LogSample:      get(sc, "log_sample", r.LogSample, defaultLogSample),
		LogSlow:        get(sc, "log_slow", r.LogSlow, 0),

		Health: resolveHealth(sc, r.Health, protocol),
	}
	for j := range r.Backends {
		f.Backends = append(f.Backends, resolveBackend(sc, j, &r.Backends[j]))
	}
	f.Discovery = resolveDiscovery(sc, r.Discovery, dns)
	resolveProxy(sc, r, &f)
	return f
}

// resolveListen parses the listen addresses; a missing or empty list is a
// problem, a frontend must listen somewhere.
func resolveListen(sc scope, s *listSetting) []netip.AddrPort {
	list := get(sc, "listen", s, nil)
	if len(list) == 0 && (s == nil || s.err == nil) {
		sc.addf("listen", `required: at least one IP:port, such as "127.0.0.1:7000"`)
	}
	var addrs []netip.AddrPort
	for _, text := range list {
		ap, err := parseAddrPort(text)
		if err != nil {
			sc.addf("listen", "%v", err)
			continue
		}
		addrs = append(addrs, ap)
	}
	return addrs
}

func resolvePrefixes(sc scope, field string, s *listSetting) []netip.Prefix {
	var prefixes []netip.Prefix
	for _, text := range get(sc, field, s, nil) {
		p, err := parsePrefix(text)
		if err != nil {
			sc.addf(field, "%v", err)
			continue
		}
		prefixes = append(prefixes, p)
	}
	return prefixes
}

func resolveHealth(sc scope, r *rawHealth, protocol string) Health {
	if r == nil {
		r = &rawHealth{}
	}
	check := defaultCheck
	if protocol == ProtocolUDP {
		// No probe fits every UDP service: the operator names one.
		check = defaultCheckUDP
	}
	h := Health{
		Check:       get(sc, "health.check", r.Check, check),
		Interval:    get(sc, "health.interval", r.Interval, defaultInterval),
		Timeout:     get(sc, "health.timeout", r.Timeout, defaultCheckTimeout),
		Rise:        get(sc, "health.rise", r.Rise, defaultRise),
		Fall:        get(sc, "health.fall", r.Fall, defaultFall),
		PassiveFall: get(sc, "health.passive_fall", r.PassiveFall, defaultPassiveFall),
		Port:        get(sc, "health.port", r.Port, defaultHealthPort),

		Send:        get(sc, "health.send", r.Send, ""),
		SendHex:     get(sc, "health.send_hex", r.SendHex, ""),
		Expect:      get(sc, "health.expect", r.Expect, ""),
		ExpectRegex: get(sc, "health.expect_regex", r.ExpectRegex, ""),

		User:     get(sc, "health.user", r.User, defaultHealthUser),
		Password: resolvePassword(sc, r),

		Path:   get(sc, "health.path", r.Path, defaultHealthPath),
		Status: get(sc, "health.status", r.Status, defaultHTTPStatus),

		ProbeWhenIdleOnly: get(sc, "health.probe_when_idle_only", r.ProbeWhenIdleOnly, false),

		Role:        get(sc, "health.role", r.Role, ""),
		MaxLag:      get(sc, "health.max_lag", r.MaxLag, 0),
		MaxLagBytes: get(sc, "health.max_lag_bytes", r.MaxLagBytes, 0),
	}
	h.FastInterval = get(sc, "health.fast_interval", r.FastInterval, h.Interval)
	h.DownInterval = get(sc, "health.down_interval", r.DownInterval, h.Interval)
	h.Database = get(sc, "health.database", r.Database, h.User)
	if h.Check == CheckRedis && r.User == nil {
		// Redis logs in as its default user unless an ACL user is named.
		h.User = ""
	}
	// On by default where it applies: only the http probe reads it.
	h.HTTPKeepalive = get(sc, "health.http_keepalive", r.HTTPKeepalive, defaultHTTPKeepalive && h.Check == CheckHTTP)
	return h
}

// resolvePassword reads health.password, or its deprecated spellings
// password_file and password_env with a warning.
func resolvePassword(sc scope, r *rawHealth) Secret {
	s := get(sc, "health.password", r.Password, Secret{})
	file := get(sc, "health.password_file", r.PasswordFile, "")
	env := get(sc, "health.password_env", r.PasswordEnv, "")
	switch {
	case r.PasswordFile != nil && r.PasswordEnv != nil:
		sc.addf("health.password_env", "set password_file or password_env, not both")
	case r.Password != nil && (r.PasswordFile != nil || r.PasswordEnv != nil):
		sc.addf("health.password", "set password only; password_file and password_env are its deprecated spellings")
	case r.PasswordFile != nil:
		sc.warnf("health.password_file", "deprecated: write password = { file = %q }", file)
		s = Secret{File: file}
	case r.PasswordEnv != nil:
		sc.warnf("health.password_env", "deprecated: write password = { env = %q }", env)
		s = Secret{Env: env}
	}
	return s
}

func resolveBackend(sc scope, j int, r *rawBackend) Backend {
	field := fmt.Sprintf("backend[%d].", j)
	var b Backend
	text := get(sc, field+"address", r.Address, "")
	switch {
	case r.Address == nil:
		sc.addf(field+"address", `required: the backend's IP:port, such as "10.0.0.11:5432"`)
	case r.Address.err == nil:
		ap, host, err := parseBackendAddress(text)
		if err != nil {
			sc.addf(field+"address", "%v", err)
		}
		b.Address = ap
		if host.host != "" {
			b.Host, b.Address = host.host, netip.AddrPortFrom(netip.Addr{}, host.port)
		}
	}
	name := ""
	switch {
	case b.Host != "":
		name = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Address.Port())))
	case b.Address.IsValid():
		name = b.Address.String()
	}
	b.Name = get(sc, field+"name", r.Name, name)
	b.Weight = get(sc, field+"weight", r.Weight, defaultWeight)
	b.MaxConnections = get(sc, field+"max_connections", r.MaxConnections, 0)
	b.Backup = get(sc, field+"backup", r.Backup, false)
	return b
}
