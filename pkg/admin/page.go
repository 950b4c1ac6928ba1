package admin

import (
	_ "embed"
	"net/http"
)

// pageHTML is the status page: one file with its script and style inline,
// so it works on an admin port with no other assets and no internet.
//
//go:embed page.html
var pageHTML []byte

// pageCSP is the page's policy, with the hashes of its inline script and
// style.
var pageCSP = pagePolicy(pageHTML)

// servePage serves the page to anyone: it holds no data, and it asks for a
// login when the API it calls answers 401.
func (s *Server) servePage(w http.ResponseWriter, _ *http.Request, _ *call) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	_, _ = w.Write(pageHTML)
}
