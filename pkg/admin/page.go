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

// pageCSP lets the page run only its own inline code and talk only to the
// admin port it came from.
const pageCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"

func (s *Server) servePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(pageHTML)
}
