package config

import (
	"time"

	"github.com/splicerlb/splicer/pkg/balance"
)

// Defaults for keys left out of the file. docs/configuration.md explains
// each choice; keep the two in step.
const (
	// Workers 0 means one event loop per CPU, resolved with runtime.NumCPU.
	defaultWorkers = 0
	// Each proxied connection holds two sockets, so this needs an open-file
	// limit above 20000 plus pipes and listeners; higher caps want a higher
	// limit, which operators set consciously.
	defaultMaxConnections = 10000
	// 1024 pipes of 1MiB is at most 1GiB of kernel memory, and only while
	// bytes are in flight; beyond it the data plane copies through buffers.
	defaultMaxPipes = 1024
	// 1MiB pipes move a bulk transfer in few splice calls (the kernel
	// default is 64KiB), and 1MiB is fs.pipe-max-size's default, the most an
	// unprivileged process may ask for.
	defaultPipeSize = 1 << 20
	// Large enough to move bulk data in few read/write calls, small enough
	// that a buffer per busy connection stays cheap.
	defaultBufferSize = 64 << 10
	// Long enough for typical queries and requests to finish, short enough
	// for an orchestrator's stop timeout.
	defaultShutdownTimeout = 30 * time.Second

	defaultLogLevel  = "info"
	defaultLogFormat = "json"

	defaultProtocol = ProtocolTCP
	defaultStrategy = StrategyRoundRobin
	// The strategy's own default (see balance.DefaultMaglevTableSize).
	defaultMaglevTableSize = balance.DefaultMaglevTableSize
	// Frontend MaxConnections 0: only the global cap applies.
	defaultFrontendMaxConnections = 0
	// A queue absorbs a burst while every backend is at its cap, bounded so
	// that waiting clients cannot exhaust fds.
	defaultMaxQueue     = 1024
	defaultQueueTimeout = 3 * time.Second
	// A backend on the same network answers a SYN in milliseconds; 2s
	// allows for a retransmitted SYN (1s) before trying another backend.
	defaultConnectTimeout = 2 * time.Second
	// Database clients hold idle pooled connections for long periods.
	defaultIdleTimeoutTCP = time.Hour
	// UDP has no close: a flow ends when it has been quiet this long.
	defaultIdleTimeoutUDP = 30 * time.Second
	// A half-closed connection whose other side never finishes would
	// otherwise live until the idle timeout.
	defaultHalfCloseTimeout = 60 * time.Second
	defaultRetries          = 2
	// Keepalive finds peers that vanished without a FIN or RST (a crashed
	// host, a dropped NAT entry) after 60s + 6*10s = 2 minutes, instead of
	// the kernel's default of over 2 hours.
	defaultTCPKeepalive      = true
	defaultKeepaliveIdle     = 60 * time.Second
	defaultKeepaliveInterval = 10 * time.Second
	defaultKeepaliveCount    = 6
	// Per-client limits and slow start are off unless asked for.
	defaultPerClientLimit = 0
	defaultSlowStart      = 0
	// Closing established connections of a backend that failed a probe
	// would cut off clients a slow-but-alive backend still serves.
	defaultOnDown = OnDownKeep
	// -1: a UDP flow lives until idle, however many replies it gets.
	defaultResponses = -1
	defaultMaxFlows  = 10000

	defaultCheck        = CheckTCP
	defaultCheckUDP     = CheckNone
	defaultInterval     = 2 * time.Second
	defaultCheckTimeout = time.Second
	// Two passes to come up and three failures to go down: one lost probe
	// neither marks a backend down nor flaps it back up.
	defaultRise        = 2
	defaultFall        = 3
	defaultPassiveFall = 5
	defaultHealthPort  = 0
	defaultHealthUser  = "splicer"
	defaultHealthPath  = "/"
	defaultHTTPStatus  = 200
	// A kept-alive probe connection costs the backend one accept per
	// idle timeout instead of one per check.
	defaultHTTPKeepalive = true

	defaultWeight = 1
)
