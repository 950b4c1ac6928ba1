package admin

import (
	"context"
	"fmt"
	"net/http"

	"github.com/splicerlb/splicer/pkg/stats"
)

// Lifecycle is the control of the daemon process itself: reload, binary
// upgrade, and the runtime state kept across both. The daemon implements
// it; a Server without one answers its routes 501.
type Lifecycle interface {
	// Reload reads the configuration again and applies what changed. On
	// failure nothing changed and the result lists every problem.
	Reload(ctx context.Context) ReloadResult
	// Upgrade starts the binary again, hands it the listening sockets,
	// and lets this process drain once the new one is ready. On failure
	// this process serves on and the result says why.
	Upgrade(ctx context.Context) UpgradeResult
	// RuntimeState is the document the state file holds.
	RuntimeState() stats.RuntimeState
}

// ReloadResult is the answer to POST /api/v1/reload.
type ReloadResult struct {
	OK bool `json:"ok"`
	// Config is the file the configuration was read from.
	Config string `json:"config,omitempty"`
	// Problems is every reason the reload was refused.
	Problems []Problem `json:"problems,omitempty"`
	// Changes is what a successful reload changed.
	Changes any     `json:"changes,omitempty"`
	Seconds float64 `json:"duration_seconds"`
}

// Problem is one thing wrong with a configuration, located when possible.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Text is the whole problem on one line, "file:line: path: message".
	Text string `json:"text"`
}

// UpgradeResult is the answer to POST /api/v1/upgrade.
type UpgradeResult struct {
	OK     bool   `json:"ok"`
	OldPID int    `json:"old_pid"`
	NewPID int    `json:"new_pid,omitempty"`
	Error  string `json:"error,omitempty"`
}

// lifecycleMissing answers for a lifecycle route on a Server without one.
func (s *Server) lifecycleMissing(w http.ResponseWriter, c *call) bool {
	if s.lifecycle != nil {
		return false
	}
	msg := "this admin server does not control a daemon process"
	if c.rt.mutates() {
		c.fail(w, http.StatusNotImplemented, msg)
	} else {
		writeError(w, http.StatusNotImplemented, msg)
	}
	return true
}

// serveReload answers 200 with what changed, or 422 with every problem
// (the configuration in force is unchanged). The request is audited before
// the reload; a failed reload adds a record saying how it failed.
func (s *Server) serveReload(w http.ResponseWriter, r *http.Request, c *call) {
	if s.lifecycleMissing(w, c) || !c.commit(w) {
		return
	}
	s.log.Info().Str("user", c.p.User).Str("source", c.p.Source).Msg("reload requested")
	res := s.lifecycle.Reload(r.Context())
	status := http.StatusOK
	if !res.OK {
		status = http.StatusUnprocessableEntity
		c.record(fmt.Sprintf("error: %d %d problems", status, len(res.Problems)))
	}
	writeJSON(w, status, res)
}

// serveUpgrade answers 200 once the new process is serving, or 500 with
// the reason it could not take over. Audited as reloads are.
func (s *Server) serveUpgrade(w http.ResponseWriter, r *http.Request, c *call) {
	if s.lifecycleMissing(w, c) || !c.commit(w) {
		return
	}
	s.log.Info().Str("user", c.p.User).Str("source", c.p.Source).Msg("binary upgrade requested")
	res := s.lifecycle.Upgrade(r.Context())
	status := http.StatusOK
	if !res.OK {
		status = http.StatusInternalServerError
		c.record(fmt.Sprintf("error: %d %s", status, res.Error))
	}
	writeJSON(w, status, res)
}

func (s *Server) serveState(w http.ResponseWriter, _ *http.Request, c *call) {
	if s.lifecycleMissing(w, c) {
		return
	}
	writeJSON(w, http.StatusOK, s.lifecycle.RuntimeState())
}
