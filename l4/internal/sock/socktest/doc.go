// Package socktest holds loopback socket helpers for the data-plane
// tests: raw non-blocking TCP pairs made with package sock, and bounded
// waits for readiness. It is imported by tests only.
package socktest
