package admin

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/splicerlb/splicer/pkg/stats"
)

// Paging bounds of GET /api/v1/connections.
const (
	DefaultConnLimit = 100
	MaxConnLimit     = 1000 // larger limits are clamped to it
)

// connList is the answer to GET /api/v1/connections. NextAfter is the
// `after` value for the next page, or 0 when this page is the last.
type connList struct {
	Connections []stats.Conn `json:"connections"`
	Total       int          `json:"total"`
	NextAfter   uint64       `json:"next_after"`
}

func (s *Server) serveConnections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter \"after\": %q is not a connection ID", v))
			return
		}
		after = n
	}
	limit := DefaultConnLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter \"limit\": %q is not a positive number", v))
			return
		}
		limit = min(n, MaxConnLimit)
	}
	// One more than the page tells whether another page follows without
	// sending the client to an empty one.
	conns, total, err := s.src.Connections(q.Get("frontend"), after, limit+1)
	if err != nil {
		writeError(w, sourceStatus(err), err.Error())
		return
	}
	page := connList{Connections: conns, Total: total}
	if len(conns) > limit {
		page.Connections = conns[:limit]
		page.NextAfter = conns[limit-1].ID
	}
	if page.Connections == nil {
		page.Connections = []stats.Conn{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) serveCloseConnection(w http.ResponseWriter, r *http.Request) {
	v := r.PathValue("id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("connection ID %q is not a number", v))
		return
	}
	if err := s.src.CloseConnection(id); err != nil {
		writeError(w, sourceStatus(err), err.Error())
		return
	}
	s.log.Info().Uint64("conn", id).Str("remote", r.RemoteAddr).Msg("connection closed by admin")
	w.WriteHeader(http.StatusNoContent)
}
