package admin

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/splicerlb/splicer/pkg/config"
)

// authenticate finds who made r, trying in turn: a verified TLS client
// certificate (its subject common name is a user's name), a bearer token,
// the session cookie, the socket peer's uid or gid, and last the anonymous
// read-only principal, which exists only while no users file is configured
// and only on local connections. Credentials that are presented and wrong
// are an error even when a later way would have let the request in: a
// client that sends a token means that token.
func (s *Security) authenticate(r *http.Request, ci connInfo, a *Access) (Principal, error) {
	p := Principal{Transport: ci.transport, Source: r.RemoteAddr}
	if ci.peer != nil {
		p.Source = fmt.Sprintf("pid=%d uid=%d gid=%d", ci.peer.Pid, ci.peer.Uid, ci.peer.Gid)
	}
	user := func(u User, via string) (Principal, error) {
		p.User, p.Role, p.Via = u.Name, u.Role, via
		return p, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if a.users != nil {
			if u, ok := a.users.Lookup(cn); ok {
				return user(u, ViaCert)
			}
		}
		return p, fmt.Errorf("%w: the client certificate's subject CN=%q is not a user in admin.users_file", errAuthenticate, cn)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return p, fmt.Errorf("%w: the Authorization header must be \"Bearer TOKEN\"", errAuthenticate)
		}
		if a.users != nil {
			if u, ok := a.users.ByToken(strings.TrimSpace(token)); ok {
				return user(u, ViaToken)
			}
		}
		return p, fmt.Errorf("%w: the bearer token matches no user", errAuthenticate)
	}
	if c, err := r.Cookie(sessionCookie); err == nil && a.users != nil {
		sess, ok := s.sessions.lookup(c.Value)
		u, found := User{}, false
		if ok {
			u, found = a.users.Lookup(sess.user)
		}
		if !found || !u.HasToken || u.Digest != sess.digest {
			return p, fmt.Errorf("%w: the session has ended; log in again", errAuthenticate)
		}
		p.csrf = sess.csrf
		return user(u, ViaSession)
	}
	if ci.peer != nil {
		// A grant by user wins over one by group: it is more specific.
		for _, byUID := range []bool{true, false} {
			for _, g := range a.grants {
				id := ci.peer.Gid
				if byUID {
					id = ci.peer.Uid
				}
				if g.byUID == byUID && g.id == id {
					p.User, p.Role, p.Via = g.key, g.role, ViaPeer
					return p, nil
				}
			}
		}
	}
	if a.users == nil && ci.local {
		p.Role, p.Via = Role{Name: config.RoleViewer}, ViaAnonymous
		return p, nil
	}
	return p, fmt.Errorf("%w: send \"Authorization: Bearer TOKEN\", log in on the page, or use the admin socket", errAuthenticate)
}
