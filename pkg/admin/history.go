package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/splicerlb/splicer/pkg/stats"
)

// HistorySource serves the per-second history of the frontends and
// backends; the daemon implements it. A Server without one answers GET
// /api/v1/history 501.
type HistorySource interface {
	// History returns the last seconds samples (at most
	// stats.HistorySeconds) of frontend, or of every frontend for "". An
	// unknown frontend is an error wrapping ErrNotFound.
	History(frontend string, seconds int) (stats.History, error)
}

func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request, c *call) {
	if s.history == nil {
		writeError(w, http.StatusNotImplemented, "this admin server keeps no history")
		return
	}
	q := r.URL.Query()
	seconds := stats.HistorySeconds
	if v := q.Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter \"seconds\": %q is not a positive number", v))
			return
		}
		seconds = min(n, stats.HistorySeconds)
	}
	h, err := s.history.History(q.Get("frontend"), seconds)
	if err != nil {
		writeError(w, sourceStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// History fetches GET /api/v1/history: the last seconds samples of
// frontend ("" for all).
func (c *Client) History(ctx context.Context, frontend string, seconds int) (stats.History, error) {
	q := url.Values{}
	if frontend != "" {
		q.Set("frontend", frontend)
	}
	if seconds > 0 {
		q.Set("seconds", strconv.Itoa(seconds))
	}
	var h stats.History
	path := "/api/v1/history"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	err := c.call(ctx, http.MethodGet, path, nil, &h)
	return h, err
}
