package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// route binds a method and a path to a handler and declares the permission
// it needs and the action the audit log names it by; the table in routes is
// the single place that grants access.
type route struct {
	method string
	path   string // a ServeMux pattern without the method
	perm   Perm
	action string
	handle func(w http.ResponseWriter, r *http.Request, c *call)
}

// mutates reports whether the route changes state: every such request is
// audited, whatever its outcome.
func (rt *route) mutates() bool { return unsafeMethod(rt.method) }

func (s *Server) routes() []route {
	return []route{
		{http.MethodGet, "/{$}", PermPublic, "page", s.servePage},
		{http.MethodGet, "/healthz", PermPublic, "healthz", s.serveHealthz},
		{http.MethodGet, "/readyz", PermPublic, "readyz", s.serveReadyz},
		{http.MethodGet, "/metrics", PermStatsRead, "metrics", s.serveMetrics},
		{http.MethodGet, "/api/v1/stats", PermStatsRead, "stats", s.serveStats},
		{http.MethodGet, "/api/v1/history", PermStatsRead, "history", s.serveHistory},
		{http.MethodPost, "/api/v1/frontends/{frontend}/backends/{backend}/state", PermBackendState, "backend.state", s.serveSetState},
		{http.MethodPut, "/api/v1/frontends/{frontend}/backends/{backend}/weight", PermBackendWeight, "backend.weight", s.serveSetWeight},
		{http.MethodGet, "/api/v1/connections", PermConnectionsRead, "connections.list", s.serveConnections},
		{http.MethodDelete, "/api/v1/connections/{id}", PermConnectionKill, "connection.kill", s.serveCloseConnection},
		{http.MethodPost, "/api/v1/reload", PermReload, "reload", s.serveReload},
		{http.MethodPost, "/api/v1/upgrade", PermUpgrade, "upgrade", s.serveUpgrade},
		{http.MethodGet, "/api/v1/state", PermStatsRead, "state", s.serveState},
		{http.MethodGet, sessionPath, PermPublic, "session.show", s.serveSession},
		{http.MethodPost, sessionPath, PermPublic, "session.login", s.serveLogin},
		{http.MethodDelete, sessionPath, PermStatsRead, "session.logout", s.serveLogout},
		{http.MethodGet, "/api/v1/audit/checkpoint", PermAuditRead, "audit.checkpoint", s.serveAuditCheckpoint},
	}
}

// newMux registers each path once with a dispatcher over its methods, rather
// than "METHOD /path" patterns, so that a wrong method gets the same JSON
// error body as every other failure instead of ServeMux's plain text.
func (s *Server) newMux() *http.ServeMux {
	byPath := map[string]map[string]*route{}
	var order []string
	for _, rt := range s.routes() {
		if byPath[rt.path] == nil {
			byPath[rt.path] = map[string]*route{}
			order = append(order, rt.path)
		}
		byPath[rt.path][rt.method] = &rt
	}
	mux := http.NewServeMux()
	for _, path := range order {
		mux.Handle(path, s.dispatch(byPath[path]))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such path %q", r.URL.Path))
	})
	return mux
}

// dispatch runs every request through the same steps, each of which may
// refuse it:
//
//  1. the method: 405 with an Allow header when the path has no route for
//     it (so a GET never reaches a mutation); HEAD is served where GET is;
//  2. the in-flight cap: 503 beyond admin.max_requests;
//  3. browser safety (browser.go): 421 for a Host that is not ours, 403
//     for a cross-site change, 415 for a change not sent as JSON;
//  4. the failed-login limiter: 429 for a source that failed too often;
//  5. authentication: 401 without valid credentials (routes other than
//     PermPublic);
//  6. authorization: 403 when the role lacks the route's permission, or is
//     scoped to other frontends than the one in the path;
//  7. CSRF: 403 for a change made with the session cookie without its
//     X-CSRF-Token.
//
// Every refusal from step 3 on is audited, and so is every request to a
// route that changes state, whatever its outcome.
func (s *Server) dispatch(methods map[string]*route) http.Handler {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if _, ok := methods[m]; !ok {
			continue
		}
		allowed = append(allowed, m)
		if m == http.MethodGet {
			allowed = append(allowed, http.MethodHead)
		}
	}
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		rt, ok := methods[method]
		if !ok {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed,
				fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
			return
		}
		select {
		case s.inflight <- struct{}{}:
			defer func() { <-s.inflight }()
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable,
				fmt.Sprintf("admin port busy: %d requests in flight (admin.max_requests)", cap(s.inflight)))
			return
		}
		c := s.newCall(r, rt)
		s.serve(w, r, c)
		if rt.mutates() && !c.recorded {
			// Every handler of a change records it; this is the net for
			// one that forgot, so the log still shows the request.
			c.record("error: the handler wrote no audit record")
		}
	})
}

// serve runs steps 3 to 7 of dispatch and then the handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, c *call) {
	access := s.sec.access.Load()
	if status, msg := browserCheck(r, c.p.Transport, access.hosts); status != 0 {
		c.deny(w, status, msg)
		return
	}
	if c.rt.perm != PermPublic || c.rt.path == sessionPath {
		if blocked, first := s.sec.failures.blocked(c.limitKey); blocked {
			w.Header().Set("Retry-After", strconv.Itoa(s.sec.failures.retryAfter()))
			msg := "too many failed logins from this source; try again later"
			if first {
				c.deny(w, http.StatusTooManyRequests, msg)
			} else {
				writeError(w, http.StatusTooManyRequests, msg)
			}
			return
		}
	}
	if c.rt.perm == PermPublic {
		c.rt.handle(w, r, c)
		return
	}
	p, err := s.sec.authenticate(r, c.conn, access)
	if err != nil {
		s.sec.failures.fail(c.limitKey)
		w.Header().Set("WWW-Authenticate", `Bearer realm="splicer"`)
		c.deny(w, http.StatusUnauthorized, err.Error())
		return
	}
	c.setPrincipal(p)
	if !p.Role.Can(c.rt.perm) {
		msg := fmt.Sprintf("role %s lacks permission %s", p.Role, c.rt.perm)
		if p.Via == ViaAnonymous {
			msg = fmt.Sprintf("read-only: no users are configured, so nobody may use %s; "+
				"add one with `splicer user add` and set admin.users_file (see docs/security.md)", c.rt.perm)
		}
		c.deny(w, http.StatusForbidden, msg)
		return
	}
	if fe := r.PathValue("frontend"); fe != "" && !p.Role.Covers(fe) {
		c.deny(w, http.StatusForbidden, fmt.Sprintf("role %s does not cover frontend %q", p.Role, fe))
		return
	}
	if p.Via == ViaSession && unsafeMethod(r.Method) && !csrfMatches(p.csrf, r.Header.Get(csrfHeader)) {
		c.deny(w, http.StatusForbidden, "missing or wrong "+csrfHeader+" header for a change made with the session cookie")
		return
	}
	c.rt.handle(w, r, c)
}

// call is one request on its way through dispatch: who made it and what
// the audit log will say of it.
type call struct {
	s        *Server
	rt       *route
	conn     connInfo
	p        Principal
	limitKey string
	// rec collects the audit record: handlers fill Target, Previous and
	// New as they learn them.
	rec      AuditRecord
	recorded bool
}

func (s *Server) newCall(r *http.Request, rt *route) *call {
	ci := requestConn(r)
	c := &call{s: s, rt: rt, conn: ci}
	c.p = Principal{Transport: ci.transport, Source: r.RemoteAddr}
	c.limitKey = failKey(r.RemoteAddr)
	if ci.peer != nil {
		c.p.Source = fmt.Sprintf("pid=%d uid=%d gid=%d", ci.peer.Pid, ci.peer.Uid, ci.peer.Gid)
		c.limitKey = "uid:" + strconv.FormatUint(uint64(ci.peer.Uid), 10)
	}
	c.rec = AuditRecord{Source: c.p.Source, Transport: ci.transport, Action: rt.action, Target: r.URL.Path}
	return c
}

func (c *call) setPrincipal(p Principal) {
	c.p = p
	c.rec.User, c.rec.Role = p.User, p.Role.String()
}

// record appends the call's audit record with result; it reports whether
// the record is on disk (always true without an audit log).
func (c *call) record(result string) bool {
	c.recorded = true
	c.rec.Result = result
	if _, err := c.s.sec.audit.Append(c.rec); err != nil {
		c.s.log.Error().Err(err).Str("action", c.rec.Action).Msg("audit record not written")
		return false
	}
	return true
}

// deny answers status with msg and audits the refusal.
func (c *call) deny(w http.ResponseWriter, status int, msg string) {
	c.record(fmt.Sprintf("denied: %d %s", status, msg))
	c.s.log.Info().Str("action", c.rt.action).Str("user", c.p.User).Str("source", c.p.Source).
		Int("status", status).Str("error", msg).Msg("admin request denied")
	writeError(w, status, msg)
}

// fail answers a change that was refused for its content (bad input, no
// such backend) and audits it.
func (c *call) fail(w http.ResponseWriter, status int, msg string) {
	c.record(fmt.Sprintf("error: %d %s", status, msg))
	writeError(w, status, msg)
}

// commit audits a change before it is applied. When the record cannot be
// written the change is refused (503) and commit returns false: nothing
// may change that the log would not show.
func (c *call) commit(w http.ResponseWriter) bool {
	if c.record("ok") {
		return true
	}
	writeError(w, http.StatusServiceUnavailable, "audit log unavailable, change refused; see the daemon's log")
	return false
}

// failAfterCommit reports a change that was audited as ok and then failed
// to apply (the backend vanished in between): a second record says so.
func (c *call) failAfterCommit(w http.ResponseWriter, status int, err error) {
	c.record(fmt.Sprintf("error: %d %v", status, err))
	writeError(w, status, err.Error())
}

// errAuthenticate wraps every authentication failure.
var errAuthenticate = errors.New("no valid credentials")
