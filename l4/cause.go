package l4

import (
	"fmt"
	"sync/atomic"

	"github.com/splicerlb/splicer/pkg/backend"
)

// Cause is why a TCP connection or a UDP flow ended. Every connection gets
// exactly one, set by the first event that decides its end: later events
// (a timeout while the last bytes drain, the peer's reset that follows)
// do not overwrite it. docs/operations.md lists the causes for operators;
// docs/architecture.md says how each one closes the sockets.
type Cause uint8

// The causes. Only CauseClientFIN and CauseBackendFIN are clean ends; every
// other cause means the conversation was cut, and each peer still connected
// gets a reset rather than a FIN (see conn.end).
const (
	// CauseNone is the cause of a connection that has not ended.
	CauseNone Cause = iota
	// CauseClientFIN: both directions ended with a FIN, the client's
	// first; or the client's FIN was followed by a reset of the client
	// socket after its stream was complete.
	CauseClientFIN
	// CauseBackendFIN is CauseClientFIN with the backend's FIN first.
	CauseBackendFIN
	// CauseClientReset: the client socket failed (a reset, a keepalive
	// timeout) before its stream was complete.
	CauseClientReset
	// CauseBackendReset: the backend socket failed after the connect, before
	// its stream was complete. What it sent before the reset was delivered.
	CauseBackendReset
	// CauseIdleTimeout: no byte moved either way for idle_timeout.
	CauseIdleTimeout
	// CauseHalfCloseTimeout: one direction had ended and the other moved
	// no byte for half_close_timeout.
	CauseHalfCloseTimeout
	// CauseConnectFailed: every allowed try failed; each try's reason is
	// kept (see TryResult).
	CauseConnectFailed
	// CauseNoBackend: no backend could take the client (all down,
	// draining, in maint, or none left untried) and waiting made no sense.
	CauseNoBackend
	// CauseQueueFull: every backend was at its cap and the wait queue was
	// full (or max_queue is 0).
	CauseQueueFull
	// CauseQueueTimeout: the client waited queue_timeout for a slot.
	CauseQueueTimeout
	// CauseDenied: the access list (allow/deny) refused the client.
	CauseDenied
	// CauseClientLimit: max_connections_per_client refused the client.
	CauseClientLimit
	// CauseRateLimit: connection_rate_per_client refused the client.
	CauseRateLimit
	// CauseAdminKill: an operator closed the connection through the admin
	// API.
	CauseAdminKill
	// CauseBackendDown: the backend was marked down with on_down = "close".
	CauseBackendDown
	// CauseShutdown: the server's shutdown deadline passed (or Close was
	// called) while the connection was open, or the drain of a frontend a
	// reload removed ran out.
	CauseShutdown
	// CauseHandoverRefused: at a binary upgrade, this process could not
	// adopt a connection or flow the previous one handed over (its
	// backend or frontend is gone from the config, a cap is reached, the
	// record is of an unknown version); both peers get a reset.
	CauseHandoverRefused
	// CauseReplied: a UDP flow got every reply it expected (responses
	// per datagram): its clean end.
	CauseReplied
	// CauseICMPError: a UDP flow's backend answered with ICMP errors (port
	// unreachable, host unreachable): before any reply, or twice in a row
	// after replies (see flow.readErrors).
	CauseICMPError
	// CauseLocalError: splicer itself could not go on: out of file
	// descriptors or memory for too long, or a syscall failing in a way
	// that says nothing about either peer. Never counted against a backend.
	CauseLocalError
	// CauseProxyInvalid: a sender trusted to send a PROXY header
	// (accept_proxy_from) sent bytes that are not a valid one, or closed
	// its connection in the middle of one.
	CauseProxyInvalid
	// CauseProxyTimeout: a trusted sender's PROXY header was not complete
	// within proxy_header_timeout.
	CauseProxyTimeout
	// CauseProxyUntrusted: on an accept_proxy frontend, a client outside
	// accept_proxy_from (without accept_proxy_optional) was refused at
	// accept.
	CauseProxyUntrusted

	// NumCauses sizes arrays indexed by Cause.
	NumCauses = int(CauseProxyUntrusted) + 1
)

var causeNames = [NumCauses]string{
	CauseNone:             "none",
	CauseClientFIN:        "client_fin",
	CauseBackendFIN:       "backend_fin",
	CauseClientReset:      "client_reset",
	CauseBackendReset:     "backend_reset",
	CauseIdleTimeout:      "idle_timeout",
	CauseHalfCloseTimeout: "half_close_timeout",
	CauseConnectFailed:    "connect_failed",
	CauseNoBackend:        "no_backend",
	CauseQueueFull:        "queue_full",
	CauseQueueTimeout:     "queue_timeout",
	CauseDenied:           "access_list",
	CauseClientLimit:      "per_client",
	CauseRateLimit:        "rate_limit",
	CauseAdminKill:        "admin_kill",
	CauseBackendDown:      "backend_down",
	CauseShutdown:         "shutdown",
	CauseHandoverRefused:  "handover_refused",
	CauseReplied:          "replied",
	CauseICMPError:        "icmp_error",
	CauseLocalError:       "local_error",
	CauseProxyInvalid:     "proxy_header_invalid",
	CauseProxyTimeout:     "proxy_header_timeout",
	CauseProxyUntrusted:   "proxy_untrusted",
}

// String is the cause's name in metrics labels, stats and logs.
func (c Cause) String() string {
	if int(c) < NumCauses {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", c)
}

// Clean reports whether the cause is a clean end: both streams complete,
// or a UDP flow that got its replies.
func (c Cause) Clean() bool {
	return c == CauseClientFIN || c == CauseBackendFIN || c == CauseReplied
}

// tcpCauses and udpCauses are the causes a TCP connection or a UDP flow
// can end with, in display order; the first tcpBackendCauses of
// tcpCauses (after the listener's and the balancer's refusals are left
// out) are those of a connection that had a backend.
var (
	tcpCauses = []Cause{
		CauseClientFIN, CauseBackendFIN, CauseClientReset, CauseBackendReset,
		CauseIdleTimeout, CauseHalfCloseTimeout, CauseAdminKill, CauseBackendDown,
		CauseShutdown, CauseLocalError, CauseHandoverRefused,
		CauseConnectFailed, CauseNoBackend, CauseQueueFull, CauseQueueTimeout,
		CauseDenied, CauseClientLimit, CauseRateLimit,
		CauseProxyInvalid, CauseProxyTimeout, CauseProxyUntrusted,
	}
	udpCauses = []Cause{
		CauseReplied, CauseIdleTimeout, CauseICMPError, CauseAdminKill, CauseBackendDown,
		CauseShutdown, CauseLocalError, CauseHandoverRefused,
	}
)

const tcpBackendCauses = 11

// Causes returns the causes a connection of a TCP frontend (udp false) or a
// flow of a UDP one can end with, in display order; with backend set, only
// those a connection can end with once a backend was chosen, which are the
// ones counted per backend. The slice is the caller's.
func Causes(udp, backend bool) []Cause {
	switch {
	case udp:
		return append([]Cause(nil), udpCauses...)
	case backend:
		return append([]Cause(nil), tcpCauses[:tcpBackendCauses]...)
	default:
		return append([]Cause(nil), tcpCauses...)
	}
}

// TryResult is the outcome of one connect attempt of a connection.
type TryResult uint8

// The try results. A refused, timed out, unreachable or reset try proves
// something about the backend and is retried on the next one (nothing was
// sent to it yet); a local failure is splicer's own shortage and is
// neither counted against the backend nor used up as a try.
const (
	TryPending     TryResult = iota // still connecting, or the connection ended while it did
	TryConnected                    // the connect succeeded
	TryRefused                      // ECONNREFUSED: nothing listens
	TryTimeout                      // no answer within connect_timeout
	TryUnreachable                  // EHOSTUNREACH, ENETUNREACH
	TryReset                        // reset during the handshake, or right after it
	TryOther                        // any other error the backend's side reported

	numTryResults = int(TryOther) + 1
)

var tryNames = [numTryResults]string{
	TryPending:     "pending",
	TryConnected:   "connected",
	TryRefused:     "refused",
	TryTimeout:     "timeout",
	TryUnreachable: "unreachable",
	TryReset:       "reset",
	TryOther:       "other",
}

// String is the result's name in logs and the connection list.
func (r TryResult) String() string {
	if int(r) < numTryResults {
		return tryNames[r]
	}
	return fmt.Sprintf("try(%d)", r)
}

// tryResult maps a connect failure reason to the try result it stands for.
func tryResult(r backend.FailReason) TryResult {
	switch r {
	case backend.FailRefused:
		return TryRefused
	case backend.FailTimeout:
		return TryTimeout
	case backend.FailUnreachable:
		return TryUnreachable
	case backend.FailReset:
		return TryReset
	default:
		return TryOther
	}
}

// causeCounters counts ended connections by cause, one atomic add each.
type causeCounters [NumCauses]atomic.Uint64

// read copies the counts.
func (cc *causeCounters) read() (out [NumCauses]uint64) {
	for i := range cc {
		out[i] = cc[i].Load()
	}
	return out
}

// Per-backend counts live in the backend's own counters, indexed by Cause.
var _ [backend.CloseCauseSlots - NumCauses]struct{}
