package backend

import "fmt"

// State is a backend's administrative state, set by an operator; it is
// independent of health.
type State int32

// The administrative states. The zero value is Ready.
const (
	// Ready takes new connections when healthy and below its cap.
	Ready State = iota
	// Drain takes no new connections; existing ones run to their end.
	Drain
	// Maint takes no new connections and health checks skip it.
	Maint
)

var stateNames = [...]string{Ready: "ready", Drain: "drain", Maint: "maint"}

func (s State) valid() bool { return s >= Ready && s <= Maint }

// String returns the name ParseState accepts, or "state(N)" for an unknown
// value.
func (s State) String() string {
	if !s.valid() {
		return fmt.Sprintf("state(%d)", int32(s))
	}
	return stateNames[s]
}

// ParseState returns the State named "ready", "drain" or "maint". Anything
// else is an error wrapping ErrInvalid.
func ParseState(name string) (State, error) {
	for s, n := range stateNames {
		if n == name {
			return State(s), nil
		}
	}
	return Ready, fmt.Errorf("unknown backend state %q (want ready, drain or maint): %w", name, ErrInvalid)
}
