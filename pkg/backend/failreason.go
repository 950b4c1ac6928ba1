package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// FailReason classifies a failed connect to a backend for the failure
// counters.
type FailReason uint8

// The failure reasons. FailOther catches everything unclassified.
const (
	FailRefused     FailReason = iota // ECONNREFUSED: nothing listens
	FailTimeout                       // no answer within connect_timeout
	FailUnreachable                   // EHOSTUNREACH, ENETUNREACH
	FailReset                         // ECONNRESET, EPIPE during connect
	FailOther

	// NumFailReasons sizes arrays indexed by FailReason.
	NumFailReasons = int(FailOther) + 1
)

var failReasonNames = [NumFailReasons]string{
	FailRefused:     "refused",
	FailTimeout:     "timeout",
	FailUnreachable: "unreachable",
	FailReset:       "reset",
	FailOther:       "other",
}

// String returns the reason's metric label value, or "reason(N)" for an
// unknown value.
func (r FailReason) String() string {
	if int(r) >= NumFailReasons {
		return fmt.Sprintf("reason(%d)", r)
	}
	return failReasonNames[r]
}

// ClassifyFailure maps a connect error to its reason with errors.Is, so a
// wrapped errno or a *net.OpError classifies the same as the bare errno. A
// nil error is FailOther.
func ClassifyFailure(err error) FailReason {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused
	case errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return FailTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return FailUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return FailReset
	default:
		return FailOther
	}
}
