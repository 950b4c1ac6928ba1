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

// ConnPage is the answer to GET /api/v1/connections. NextAfter is the
// `after` value for the next page, or 0 when this page is the last.
type ConnPage struct {
	Connections []stats.Conn `json:"connections"`
	Total       int          `json:"total"`
	NextAfter   uint64       `json:"next_after"`
}

func (s *Server) serveConnections(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	fe := q.Get("frontend")
	// A scoped role sees the client addresses of its frontends only.
	if role := c.p.Role; role.Frontends != nil {
		switch {
		case fe == "" && len(role.Frontends) == 1:
			fe = role.Frontends[0]
		case fe == "":
			c.deny(w, http.StatusForbidden, fmt.Sprintf("role %s is scoped: list one frontend at a time with ?frontend=", role))
			return
		case !role.Covers(fe):
			c.deny(w, http.StatusForbidden, fmt.Sprintf("role %s does not cover frontend %q", role, fe))
			return
		}
	}
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
	conns, total, err := s.src.Connections(fe, after, limit+1)
	if err != nil {
		writeError(w, sourceStatus(err), err.Error())
		return
	}
	page := ConnPage{Connections: conns, Total: total}
	if len(conns) > limit {
		page.Connections = conns[:limit]
		page.NextAfter = conns[limit-1].ID
	}
	if page.Connections == nil {
		page.Connections = []stats.Conn{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) serveCloseConnection(w http.ResponseWriter, r *http.Request, c *call) {
	v := r.PathValue("id")
	c.rec.Target = "connection " + v
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		c.fail(w, http.StatusBadRequest, fmt.Sprintf("connection ID %q is not a number", v))
		return
	}
	// The connection's frontend decides whether a scoped role may close
	// it; what it was is what the audit log keeps.
	page, _, err := s.src.Connections("", id-1, 1)
	if err != nil {
		c.fail(w, sourceStatus(err), err.Error())
		return
	}
	if len(page) == 0 || page[0].ID != id {
		c.fail(w, http.StatusNotFound, fmt.Sprintf("no connection %d: %v", id, ErrNotFound))
		return
	}
	conn := page[0]
	c.rec.Target = fmt.Sprintf("connection %d (%s)", id, conn.Frontend)
	c.rec.Previous = fmt.Sprintf("client %s backend %s", conn.Client, conn.Backend)
	c.rec.New = "closed"
	if !c.p.Role.Covers(conn.Frontend) {
		c.deny(w, http.StatusForbidden, fmt.Sprintf("role %s does not cover frontend %q", c.p.Role, conn.Frontend))
		return
	}
	if !c.commit(w) {
		return
	}
	if err := s.src.CloseConnection(id); err != nil {
		c.failAfterCommit(w, sourceStatus(err), err)
		return
	}
	s.log.Info().Uint64("connection_id", id).Str("user", c.p.User).Str("source", c.p.Source).Msg("connection closed by admin")
	w.WriteHeader(http.StatusNoContent)
}
