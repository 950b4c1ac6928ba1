package admin

import (
	"net/http"
)

// sessionPath is the session API: who am I (GET), log in (POST), log out
// (DELETE).
const sessionPath = "/api/v1/session"

// loginRequest is the body of POST /api/v1/session.
type loginRequest struct {
	Token string `json:"token"`
}

// sessionInfo answers GET and POST /api/v1/session: who the caller is and
// what it may do, and, for a session, the CSRF token its changes must
// carry (only a same-origin script can read this answer).
type sessionInfo struct {
	User        string   `json:"user"`
	Role        string   `json:"role"`
	Via         string   `json:"via"`
	Permissions []string `json:"permissions"`
	CSRF        string   `json:"csrf,omitempty"`
}

func principalInfo(p Principal) sessionInfo {
	perms := p.Role.Perms()
	if perms == nil {
		perms = []string{}
	}
	return sessionInfo{User: p.User, Role: p.Role.String(), Via: p.Via, Permissions: perms, CSRF: p.csrf}
}

// serveSession says who the caller is. It is public so that the page can
// ask without a record of a denial on every load: a caller without
// credentials is told it is nobody (via "none"), while credentials that
// are presented and wrong are refused, counted and audited as anywhere.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, c *call) {
	p, err := s.sec.authenticate(r, c.conn, s.sec.access.Load())
	if err != nil {
		if !presentsCredentials(r) {
			writeJSON(w, http.StatusOK, sessionInfo{Via: "none", Permissions: []string{}})
			return
		}
		s.sec.failures.fail(c.limitKey)
		c.deny(w, http.StatusUnauthorized, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, principalInfo(p))
}

// presentsCredentials reports whether r carries a token, a session cookie
// or a client certificate.
func presentsCredentials(r *http.Request) bool {
	_, err := r.Cookie(sessionCookie)
	return err == nil || r.Header.Get("Authorization") != "" || r.TLS != nil && len(r.TLS.PeerCertificates) > 0
}

// serveLogin trades a token for a session cookie. Failures count against
// the source's failed-login budget; success and failure are both audited.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request, c *call) {
	c.rec.Target = "session"
	var req loginRequest
	if err := decodeBody(w, r, &req); err != nil {
		c.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	users := s.sec.access.Load().users
	var u User
	ok := false
	if users != nil && req.Token != "" {
		u, ok = users.ByToken(req.Token)
	}
	if !ok {
		s.sec.failures.fail(c.limitKey)
		msg := "the token matches no user"
		if users == nil {
			msg = "no users are configured (admin.users_file): there is nothing to log in to"
		}
		c.deny(w, http.StatusUnauthorized, msg)
		return
	}
	c.setPrincipal(Principal{User: u.Name, Role: u.Role, Via: ViaSession, Transport: c.p.Transport, Source: c.p.Source})
	cookie, csrf := s.sec.sessions.create(u)
	c.rec.New = "logged in"
	if !c.commit(w) {
		s.sec.sessions.end(cookie)
		return
	}
	s.log.Info().Str("user", u.Name).Str("source", c.p.Source).Msg("admin page login")
	http.SetCookie(w, sessionCookieFor(cookie, r.TLS != nil))
	c.p.csrf = csrf
	writeJSON(w, http.StatusOK, principalInfo(c.p))
}

// serveLogout ends the caller's session, if it has one.
func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request, c *call) {
	c.rec.Target = "session"
	c.rec.New = "logged out"
	if !c.commit(w) {
		return
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		s.sec.sessions.end(ck.Value)
	}
	http.SetCookie(w, sessionCookieFor("", r.TLS != nil))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveAuditCheckpoint(w http.ResponseWriter, _ *http.Request, _ *call) {
	a := s.sec.Audit()
	if a == nil {
		writeError(w, http.StatusNotFound, "no audit log is configured (admin.audit_log)")
		return
	}
	writeJSON(w, http.StatusOK, a.Checkpoint())
}
