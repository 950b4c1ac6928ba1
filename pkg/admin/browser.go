package admin

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

// Browser safety. A web page the operator visits can make the browser send
// requests to the admin port; these checks refuse what such a page can do:
//
//   - DNS rebinding: a name the attacker controls is made to resolve to the
//     admin port's address, after which the attacker's page is same-origin
//     with it. The Host header then carries the attacker's name; only IP
//     literals, "localhost" and the names in admin.hosts are served.
//   - Cross-site requests (CSRF): a form or fetch from another origin. A
//     change must come with Content-Type: application/json, which no form
//     can send and which makes fetch ask first (a CORS preflight, which the
//     admin port never approves); a request whose Origin is another origin,
//     or whose Sec-Fetch-Site is not same-origin or none, is refused. Note
//     that two ports of one host are the same site, so SameSite cookies
//     alone would not stop a page served from another port of 127.0.0.1.
//   - Clickjacking: no answer may be framed (CSP frame-ancestors 'none',
//     X-Frame-Options DENY), and the page asks for confirmation before a
//     drain, a maint or a kill.

// unsafeMethod reports whether a method may change state.
func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// hostAllowed reports whether a request's Host names this admin port: an
// IP literal (a rebinding attack needs a name), "localhost", or one of
// hosts. A request without Host (HTTP/1.0) is not from a browser.
func hostAllowed(host string, hosts []string) bool {
	if host == "" {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return true
	}
	if name == "localhost" {
		return true
	}
	for _, h := range hosts {
		if strings.EqualFold(strings.TrimSuffix(h, "."), name) {
			return true
		}
	}
	return false
}

// browserCheck returns the status and message refusing r, or 0. The Host
// check applies to TCP only: no browser reaches the socket.
func browserCheck(r *http.Request, transport string, hosts []string) (int, string) {
	if transport != TransportUnix && !hostAllowed(r.Host, hosts) {
		return http.StatusMisdirectedRequest, fmt.Sprintf(
			"host %q is not a name of this admin port (DNS rebinding defence); if it is, add it to admin.hosts", r.Host)
	}
	if !unsafeMethod(r.Method) {
		return 0, ""
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return http.StatusForbidden, fmt.Sprintf("cross-site request refused (Sec-Fetch-Site: %s)", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		u, err := url.Parse(origin)
		if err != nil || origin == "null" || u.Scheme != scheme || !strings.EqualFold(u.Host, r.Host) {
			return http.StatusForbidden, fmt.Sprintf("cross-origin request refused (Origin: %s)", origin)
		}
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return http.StatusUnsupportedMediaType, "a change must be sent as Content-Type: application/json"
		}
	}
	return 0, ""
}

// apiCSP is the policy of every answer but the page: nothing may run,
// load or frame it.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// setSecurityHeaders sets what every answer carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", apiCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// inlineBlock finds the page's inline <script> and <style> blocks.
var inlineBlock = regexp.MustCompile(`(?s)<(script|style)>(.*?)</(?:script|style)>`)

// pagePolicy builds the page's CSP: it may run exactly its own inline
// script and style (by hash, so an injected one would not run), talk only
// to the admin port it came from, and not be framed.
func pagePolicy(page []byte) string {
	src := map[string][]string{}
	for _, m := range inlineBlock.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[2])
		src[string(m[1])] = append(src[string(m[1])], "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return "default-src 'none'; script-src " + strings.Join(src["script"], " ") +
		"; style-src " + strings.Join(src["style"], " ") +
		"; connect-src 'self'; img-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
}
