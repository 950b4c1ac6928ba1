package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// FuzzRequest sends arbitrary changes through the whole request decoding
// (method, path with its escapes, query, headers, JSON body) as the admin
// user: nothing panics, every answer but the page's, the metrics' and the
// probes' is JSON, errors are JSON objects with a message, and the source
// changes only on a 2xx answer to a change, with exactly one audit record
// per change.
func FuzzRequest(f *testing.F) {
	f.Add("POST", "/api/v1/frontends/pg/backends/a/state", `{"state":"drain"}`, "application/json")
	f.Add("POST", "/api/v1/frontends/pg/backends/a/state?state=maint", ``, "")
	f.Add("PUT", "/api/v1/frontends/pg/backends/%5B%3A%3A1%5D%3A5433/weight", `{"weight":1.5}`, "application/json; charset=utf-8")
	f.Add("PUT", "/api/v1/frontends/pg/backends/a/weight", `{"weight":7} {"weight":8}`, "application/json")
	f.Add("DELETE", "/api/v1/connections/18446744073709551615", ``, "")
	f.Add("DELETE", "/api/v1/connections/3", `{}`, "")
	f.Add("POST", "/api/v1/session", `{"token":"`+adminToken+`","x":1}`, "application/json")
	f.Add("GET", "/api/v1/connections?limit=-1&after=x&frontend=%00", ``, "")
	f.Add("POST", "/api/v1/frontends/pg/backends/a/state", `{"state":"`+strings.Repeat("d", 5000)+`"}`, "application/json")
	f.Add("GET", "/../api/v1/stats", "", "")
	f.Fuzz(func(t *testing.T, method, target, body, contentType string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return // not a request line net/http would parse
		}
		req, err := http.NewRequest(method, "http://127.0.0.1:9090"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.RemoteAddr = "127.0.0.1:1"
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", contentType)
		src := newFakeSource()
		sec, auditPath := newAuditedSecurity(t, AuditOptions{})
		h := newTestServer(src, Options{Security: sec}).Handler()
		before := src.Stats()
		_, connsBefore, _ := src.Connections("", 0, 100)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		ct := rec.Header().Get("Content-Type")
		if rec.Code >= 400 {
			var eb errorBody
			if ct != "application/json" || json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Error == "" {
				t.Fatalf("%s %s: %d %q %q", method, target, rec.Code, ct, rec.Body.String())
			}
		}
		_, connsAfter, _ := src.Connections("", 0, 100)
		changed := connsAfter != connsBefore || !reflect.DeepEqual(before, src.Stats())
		if changed && (rec.Code/100 != 2 || !unsafeMethod(method)) {
			t.Fatalf("%s %s changed the source with %d", method, target, rec.Code)
		}
		if changed && len(readAudit(t, auditPath)) != 1 {
			t.Fatalf("%s %s: a change with %d audit records", method, target, len(readAudit(t, auditPath)))
		}
	})
}

// FuzzDecodeBody decodes arbitrary bodies into each request type: an error
// or a value, never a panic, and an error always says what is wrong.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"state":"drain"}`, `{"weight":256}`, `{"weight":"1"}`, `{"token":null}`,
		`{}{}`, `[`, `{"state":"\u0000"}`, "\xff", ``, `{"weight":1e400}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, v := range []any{&stateRequest{}, &weightRequest{}, &loginRequest{}} {
			req := httptest.NewRequest("POST", "/", strings.NewReader(body))
			err := decodeBody(httptest.NewRecorder(), req, v)
			if err != nil && err.Error() == "" {
				t.Fatalf("empty error for %q", body)
			}
		}
	})
}
