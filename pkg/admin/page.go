package admin

import (
	_ "embed"
	"net/http"
	"strings"
)

// The status page is one document with its script and style inline, so it
// works on an admin port with no other assets and no internet. Its charts
// are drawn by uPlot (github.com/leeoniya/uPlot, MIT licence, from the npm
// package uplot 1.6.32; docs/architecture.md says why), embedded in the
// page with its licence.
var (
	//go:embed page.html
	pageTemplate string
	//go:embed assets/uplot.min.js
	uplotJS string
	//go:embed assets/uplot.min.css
	uplotCSS string
	//go:embed assets/uplot.LICENSE
	uplotLicense string
)

// uplotMarker is where the page template takes uPlot's style and script.
const uplotMarker = "<!-- uPlot -->"

// pageHTML is the page as served.
var pageHTML = []byte(buildPage())

// buildPage puts uPlot into the template: its style and, in a script of its
// own, its licence and code.
func buildPage() string {
	lib := "<style>" + uplotCSS + "</style>\n<script>/*! uPlot 1.6.32, github.com/leeoniya/uPlot\n" +
		uplotLicense + "*/\n" + uplotJS + "</script>"
	return strings.Replace(pageTemplate, uplotMarker, lib, 1)
}

// pageCSP is the page's policy, with the hashes of its inline scripts and
// styles.
var pageCSP = pagePolicy(pageHTML)

// servePage serves the page to anyone: it holds no data, and it asks for a
// login when the API it calls answers 401.
func (s *Server) servePage(w http.ResponseWriter, _ *http.Request, _ *call) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	_, _ = w.Write(pageHTML)
}
