package admin

import (
	"io"
	"net/http"

	"github.com/splicerlb/splicer/pkg/stats"
)

// serveHealthz answers as long as the process can serve HTTP at all.
func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request, _ *call) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// serveReadyz answers 503 until the listeners are bound and the config is
// loaded, so an orchestrator sends no traffic to a splicer still starting.
func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request, _ *call) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.src.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *call) {
	s.metrics.ServeHTTP(w, r)
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request, _ *call) {
	st := s.src.Stats()
	// Empty lists encode as [] so clients can iterate without null checks.
	if st.Frontends == nil {
		st.Frontends = []stats.FrontendStats{}
	}
	writeJSON(w, http.StatusOK, st)
}
