package admin

import (
	"fmt"
	"net/http"
	"strings"
)

// route binds a method and a path to a handler and declares the permission
// it needs; the table in routes is the single place that grants access.
type route struct {
	method string
	path   string // a ServeMux pattern without the method
	need   Need
	handle http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{http.MethodGet, "/{$}", NeedRead, s.servePage},
		{http.MethodGet, "/healthz", NeedRead, s.serveHealthz},
		{http.MethodGet, "/readyz", NeedRead, s.serveReadyz},
		{http.MethodGet, "/metrics", NeedRead, s.metrics.ServeHTTP},
		{http.MethodGet, "/api/v1/stats", NeedRead, s.serveStats},
		{http.MethodPost, "/api/v1/frontends/{frontend}/backends/{backend}/state", NeedOperate, s.serveSetState},
		{http.MethodPut, "/api/v1/frontends/{frontend}/backends/{backend}/weight", NeedOperate, s.serveSetWeight},
		{http.MethodGet, "/api/v1/connections", NeedRead, s.serveConnections},
		{http.MethodDelete, "/api/v1/connections/{id}", NeedOperate, s.serveCloseConnection},
		{http.MethodPost, "/api/v1/reload", NeedOperate, s.serveReload},
		{http.MethodPost, "/api/v1/upgrade", NeedOperate, s.serveUpgrade},
		{http.MethodGet, "/api/v1/state", NeedRead, s.serveState},
	}
}

// newMux registers each path once with a dispatcher over its methods, rather
// than "METHOD /path" patterns, so that a wrong method gets the same JSON
// error body as every other failure instead of ServeMux's plain text.
func (s *Server) newMux() *http.ServeMux {
	byPath := map[string]map[string]route{}
	var order []string
	for _, rt := range s.routes() {
		if byPath[rt.path] == nil {
			byPath[rt.path] = map[string]route{}
			order = append(order, rt.path)
		}
		byPath[rt.path][rt.method] = rt
	}
	mux := http.NewServeMux()
	for _, path := range order {
		mux.Handle(path, s.dispatch(byPath[path]))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such path %q", r.URL.Path))
	})
	return mux
}

// dispatch picks the route for the request's method, answers 405 with an
// Allow header when there is none (so a GET never reaches a mutation), and
// runs the Authorizer before the handler. HEAD is served wherever GET is.
func (s *Server) dispatch(methods map[string]route) http.Handler {
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
		if err := s.authorize(r, rt.need); err != nil {
			writeError(w, authStatus(err), err.Error())
			return
		}
		rt.handle(w, r)
	})
}
