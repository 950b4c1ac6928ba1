package config

import (
	"net/netip"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/balance"
)

// Protocols accepted by Frontend.Protocol.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// Strategies accepted by Frontend.Strategy: package balance's names.
const (
	StrategyRoundRobin = balance.RoundRobin
	StrategyLeastConn  = balance.LeastConn
	StrategyP2C        = balance.P2C
	StrategyMaglev     = balance.Maglev
)

// MaxWeight is the largest backend weight (weights are 1..MaxWeight), the
// data plane's bound: backend.MaxWeight.
const MaxWeight = backend.MaxWeight

// Health check kinds accepted by Health.Check.
const (
	CheckNone       = "none"
	CheckTCP        = "tcp"
	CheckSendExpect = "send_expect"
	CheckPostgres   = "postgres"
	CheckMySQL      = "mysql"
	CheckRedis      = "redis"
	CheckHTTP       = "http"
)

// Values accepted by Frontend.LogConnections.
const (
	LogAll    = "all"
	LogErrors = "errors"
	LogOff    = "off"
)

// Values accepted by Frontend.OnDown.
const (
	OnDownKeep  = "keep"
	OnDownClose = "close"
)

// Config is a complete, validated splicer configuration.
type Config struct {
	// File is the path the config was loaded from ("" when built in code).
	File      string
	Global    Global
	Log       Log
	Admin     Admin
	Upgrade   Upgrade
	Frontends []Frontend

	// DNS is how host names are resolved ([dns]).
	DNS DNS
	// Warnings are things to fix that do not stop the config from loading,
	// such as deprecated keys, in file order. `splicer check` prints them
	// and the daemon logs them at start.
	Warnings []Problem
}

// Global holds process-wide settings ([global]).
type Global struct {
	// Workers is the number of event loops; 0 in the file means one per CPU
	// and is resolved to runtime.NumCPU() by Load.
	Workers int
	// MaxConnections caps client connections across all frontends.
	MaxConnections int
	// MaxPipes caps splice pipes in flight across all loops; beyond it the
	// data plane copies through pooled user-space buffers.
	MaxPipes int
	// PipeSize is the capacity asked of each pipe with F_SETPIPE_SZ, in bytes.
	PipeSize int
	// BufferSize is the size of a fallback copy buffer, in bytes.
	BufferSize int
	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// connections to finish before closing them.
	ShutdownTimeout time.Duration
	// CPUAffinity pins each event loop's thread to a CPU, and steers new
	// TCP connections to the loop on the CPU that received them; the
	// zero value pins nothing.
	CPUAffinity CPUAffinity

	// StateFile keeps the backend changes made at runtime (drain, maint,
	// weight) across restarts and upgrades; "" keeps none. RuntimeDir
	// holds the listener locks. Their defaults come from the environment
	// systemd gives a service (see daemon.go).
	StateFile  string
	RuntimeDir string
}

// Log holds logging settings ([log]).
type Log struct {
	Level  string // debug | info | warn | error
	Format string // json | console
	// ConnectionsFile is where the connection log goes; "" sends it to
	// the daemon's log (stderr).
	ConnectionsFile string
	// ConnectionsBuffer is the connection log lines each event loop holds
	// for the writer; beyond it, lines are dropped and counted.
	ConnectionsBuffer int
}

// Frontend is one balanced service ([[frontend]]).
type Frontend struct {
	Name     string
	Listen   []netip.AddrPort
	Protocol string
	Strategy string
	// MaglevTableSize is the lookup table size for the maglev strategy (prime).
	MaglevTableSize int

	// MaxConnections caps this frontend's client connections; 0 means only
	// the global cap applies.
	MaxConnections int
	// MaxQueue bounds the clients waiting for a backend slot; 0 disables
	// queueing (the client is closed when no backend can take it).
	MaxQueue     int
	QueueTimeout time.Duration

	ConnectTimeout   time.Duration
	IdleTimeout      time.Duration
	HalfCloseTimeout time.Duration
	// Retries is how many other backends are tried after a failed connect.
	Retries int

	// TCPKeepalive enables keepalive probes on client and backend sockets.
	TCPKeepalive      bool
	KeepaliveIdle     time.Duration
	KeepaliveInterval time.Duration
	KeepaliveCount    int

	// Allow and Deny are checked at accept: a client must match Allow (when
	// non-empty) and must not match Deny.
	Allow []netip.Prefix
	Deny  []netip.Prefix

	// MaxConnectionsPerClient caps connections per source address (0: off).
	MaxConnectionsPerClient int
	// ConnectionRatePerClient caps new connections per second per source
	// address with a token bucket of the same burst (0: off).
	ConnectionRatePerClient int

	// SlowStart is the time a recovered backend takes to ramp to its weight.
	SlowStart time.Duration
	// OnDown says what happens to a backend's connections when it is marked
	// down: OnDownKeep leaves them, OnDownClose closes them.
	OnDown string

	// SendProxy is the PROXY protocol header written to the backends that
	// do not set their own: ProxyNone, ProxyV1 or ProxyV2 (TCP only).
	// SendProxyTLVs names the optional TLVs of a v2 header, ProxyTLV*.
	SendProxy     string
	SendProxyTLVs []string
	// AcceptProxy requires a PROXY header (v1 or v2; on UDP, v2 in every
	// datagram) from the senders in AcceptProxyFrom, whose carried client
	// address then stands for the client everywhere. Other senders are
	// refused, or served as they are with AcceptProxyOptional. A TCP
	// client has ProxyHeaderTimeout to send its header.
	AcceptProxy         bool
	AcceptProxyFrom     []netip.Prefix
	AcceptProxyOptional bool
	ProxyHeaderTimeout  time.Duration

	// LogConnections selects the connections (UDP: flows) that get a line
	// in the connection log: LogAll, LogErrors or LogOff.
	LogConnections string
	// LogSample is the fraction of clean connections logged under LogAll
	// (1: every one); error lines are never sampled.
	LogSample float64
	// LogSlow makes a clean connection an error line when its backend
	// took longer than this to be ready (TCP: accept to connected; UDP:
	// first datagram to first reply); 0 turns it off.
	LogSlow time.Duration

	// UDP only.
	// Responses ends a flow after this many replies; 0 keeps no flow state
	// (no reply expected); -1 (the default) means unlimited.
	Responses int
	// MaxFlows bounds the UDP flow table of this frontend.
	MaxFlows int
	// ReceiveBuffer is the receive buffer asked for each frontend socket,
	// in bytes; 0 leaves the kernel's default (net.core.rmem_default).
	ReceiveBuffer int

	Health   Health
	Backends []Backend
	// Discovery, when not nil, supplies the backends at runtime instead of
	// Backends, which is then empty.
	Discovery *Discovery
}

// Health configures the active and passive health checks of a frontend's
// backends ([frontend.health]).
type Health struct {
	Check        string
	Interval     time.Duration
	Timeout      time.Duration
	FastInterval time.Duration
	DownInterval time.Duration
	Rise         int
	Fall         int
	// PassiveFall marks a backend down after this many consecutive connect
	// failures or resets seen by the data plane; 0 disables it.
	PassiveFall int
	// Port, when non-zero, probes this port instead of the service port.
	Port int

	// send_expect: Send (text) or SendHex, and Expect (reply prefix) or
	// ExpectRegex.
	Send        string
	SendHex     string
	Expect      string
	ExpectRegex string

	// postgres and mysql: the user the probe names; postgres also the
	// database.
	User     string
	Database string

	// Password is where the redis probe's AUTH password is kept; the zero
	// Secret sends no AUTH.
	Password Secret

	// http
	Path   string
	Status int
	// HTTPKeepalive keeps each backend's probe connection open from one
	// http check to the next (HTTP/1.1 keep-alive); false sends
	// "Connection: close" and opens a connection per check. It resolves
	// to true for check "http" and false for the others, which ignore it.
	HTTPKeepalive bool

	// ProbeWhenIdleOnly skips the probe of an up backend whose data-plane
	// traffic since its previous probe time proved it serves (a reply, no
	// passive failure); a backend without such traffic is probed as usual.
	ProbeWhenIdleOnly bool

	// Database roles (postgres, mysql, redis): Role is the role a backend
	// must have to be up, one of the Role* constants, or "" to leave roles
	// alone. MaxLag (postgres) and MaxLagBytes (redis) take a replica out
	// while it lags by more; 0 sets no limit.
	Role        string
	MaxLag      time.Duration
	MaxLagBytes int
}

// Backend is one server behind a frontend ([[frontend.backend]]).
type Backend struct {
	// Name labels the backend in stats; it defaults to the address.
	Name    string
	Address netip.AddrPort
	// Host, when not "", is the host name the address was given by: the
	// daemon resolves it, keeps resolving it (see DNS), and serves one
	// backend per address found, named "Name/IP". Address then holds the
	// port alone (its Addr is the zero Addr).
	Host string
	// Weight is between 1 and 256.
	Weight int
	// MaxConnections caps this backend's connections (0: unlimited).
	MaxConnections int
	// Backup backends take traffic only when no primary is available.
	Backup bool
	// SendProxy is the PROXY protocol header written to this backend
	// before any client byte: ProxyNone, ProxyV1 or ProxyV2. Resolved to
	// the frontend's send_proxy when the backend leaves it out; "" (a
	// backend not from the file: discovery, the admin API) means the
	// frontend's too.
	SendProxy string
}
