package admin

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// rbacSample is how the matrix exercises one route: a request that would
// succeed for a role allowed to make it.
type rbacSample struct {
	target string // path and query
	body   string
	// frontend is the frontend the request acts on ("" for none): a role
	// scoped elsewhere is refused.
	frontend string
	ok       int // the status of a request that is let through
}

// rbacSamples has one entry per route of the route table, keyed by
// "METHOD pattern". TestRBACMatrix fails for a route without one, so a new
// route cannot skip the matrix.
var rbacSamples = map[string]rbacSample{
	"GET /{$}":                     {"/", "", "", 200},
	"GET /healthz":                 {"/healthz", "", "", 200},
	"GET /readyz":                  {"/readyz", "", "", 200},
	"GET /metrics":                 {"/metrics", "", "", 200},
	"GET /api/v1/stats":            {"/api/v1/stats", "", "", 200},
	"GET /api/v1/history":          {"/api/v1/history?frontend=pg&seconds=60", "", "", 200},
	"GET /api/v1/connections":      {"/api/v1/connections", "", "", 200},
	"GET /api/v1/session":          {"/api/v1/session", "", "", 200},
	"POST /api/v1/session":         {"/api/v1/session", "", "", 200},
	"DELETE /api/v1/session":       {"/api/v1/session", "", "", 204},
	"GET /api/v1/audit/checkpoint": {"/api/v1/audit/checkpoint", "", "", 200},
	"POST /api/v1/frontends/{frontend}/backends/{backend}/state": {
		"/api/v1/frontends/pg/backends/a/state", `{"state":"drain"}`, "pg", 200},
	"PUT /api/v1/frontends/{frontend}/backends/{backend}/weight": {
		"/api/v1/frontends/pg/backends/a/weight", `{"weight":7}`, "pg", 200},
	"DELETE /api/v1/connections/{id}": {"/api/v1/connections/3", "", "pg", 204},
	"POST /api/v1/reload":             {"/api/v1/reload", "{}", "", 200},
	"POST /api/v1/upgrade":            {"/api/v1/upgrade", "{}", "", 200},
	"GET /api/v1/state":               {"/api/v1/state", "", "", 200},
}

// rbacCred is one column of the matrix.
type rbacCred struct {
	name  string
	token string // "" sends none
	user  string // the test user the token belongs to; "" for none
}

var rbacCreds = []rbacCred{
	{"no credentials", "", ""},
	{"bad token", "splicer_not-a-token", ""},
	{"viewer", viewerToken, "vera"},
	{"operator", operatorToken, "otto"},
	{"operator scoped to another frontend", scopedToken, "sam"},
	{"admin", adminToken, "ada"},
}

// rbacTransport is one of the ways the matrix reaches the server.
type rbacTransport struct {
	name string
	// peerRole, when set, grants the test process's uid that role on the
	// socket (socket_roles), so the no-credentials column gets it.
	peerRole string
	// anonymous serves no users file: loopback and socket are read-only.
	anonymous bool
	unix      bool
}

var rbacTransports = []rbacTransport{
	{name: "tcp"},
	{name: "unix", unix: true},
	{name: "unix with the peer's uid mapped to operator", unix: true, peerRole: "operator"},
	{name: "tcp without users", anonymous: true},
	{name: "unix without users", unix: true, anonymous: true},
}

// expectStatus derives a cell's status from the route table, the role
// table and the sample: nothing in it is written per cell.
func expectStatus(rt route, smp rbacSample, cred rbacCred, tr rbacTransport) int {
	var role *Role
	switch {
	case cred.token != "" && tr.anonymous:
		// No users file: no token can match.
	case cred.user != "":
		u, _ := testUsers().Lookup(cred.user)
		role = &u.Role
	case cred.token == "" && tr.peerRole != "":
		role = &Role{Name: tr.peerRole}
	case cred.token == "" && tr.anonymous:
		role = &Role{Name: "viewer"}
	}
	switch rt.action {
	case "session.login":
		// Public; the token goes in the body, and only a user's logs in.
		if cred.user != "" && !tr.anonymous {
			return smp.ok
		}
		return http.StatusUnauthorized
	case "session.show":
		if cred.token != "" && role == nil {
			return http.StatusUnauthorized
		}
		return smp.ok
	}
	switch {
	case rt.perm == PermPublic:
		return smp.ok
	case role == nil:
		return http.StatusUnauthorized
	case !role.Can(rt.perm):
		return http.StatusForbidden
	case smp.frontend != "" && !role.Covers(smp.frontend):
		return http.StatusForbidden
	}
	return smp.ok
}

// TestRBACMatrix sends every route every credential over every transport
// and checks the exact status of each cell against what the route table
// and the role table say, and that each refusal and each change left
// exactly one audit record. It also sends every other method to each path:
// 405, whoever asks.
func TestRBACMatrix(t *testing.T) {
	routes := (&Server{}).routes()
	for _, rt := range routes {
		if _, ok := rbacSamples[rt.method+" "+rt.path]; !ok {
			t.Fatalf("route %s %s has no entry in rbacSamples: add one, so the matrix covers it", rt.method, rt.path)
		}
		if rt.perm == permUnset || rt.action == "" {
			t.Errorf("route %s %s names no permission or action", rt.method, rt.path)
		}
	}
	if len(rbacSamples) != len(routes) {
		t.Errorf("rbacSamples has %d entries for %d routes: remove the stale ones", len(rbacSamples), len(routes))
	}
	for _, tr := range rbacTransports {
		t.Run(tr.name, func(t *testing.T) {
			for _, rt := range routes {
				smp := rbacSamples[rt.method+" "+rt.path]
				for _, cred := range rbacCreds {
					t.Run(rt.method+" "+rt.path+"/"+cred.name, func(t *testing.T) {
						want := expectStatus(rt, smp, cred, tr)
						got, records := rbacCell(t, tr, rt.method, smp, rt.action == "session.login", cred.token)
						wantRecords := 0
						if want == http.StatusUnauthorized || want == http.StatusForbidden || rt.mutates() {
							wantRecords = 1
						}
						if got != want || records != wantRecords {
							t.Errorf("status %d with %d audit records, want %d with %d", got, records, want, wantRecords)
						}
					})
				}
			}
			methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}
			for path, have := range routeMethods(routes) {
				for _, m := range methods {
					if slices.Contains(have, m) || m == "HEAD" && slices.Contains(have, "GET") {
						continue
					}
					smp := rbacSamples[have[0]+" "+path]
					got, records := rbacCell(t, tr, m, smp, false, adminToken)
					if got != http.StatusMethodNotAllowed || records != 0 {
						t.Errorf("%s %s: %d with %d records, want 405 with none", m, smp.target, got, records)
					}
				}
			}
		})
	}
}

func routeMethods(routes []route) map[string][]string {
	out := map[string][]string{}
	for _, rt := range routes {
		out[rt.path] = append(out[rt.path], rt.method)
	}
	return out
}

// rbacCell serves a fresh fake source over tr, sends one request and
// returns its status and the number of audit records it left.
func rbacCell(t *testing.T, tr rbacTransport, method string, smp rbacSample, tokenInBody bool, token string) (int, int) {
	t.Helper()
	sec, auditPath := newAuditedSecurity(t, AuditOptions{})
	a := &Access{users: testUsers()}
	if tr.anonymous {
		a.users = nil
	}
	if tr.peerRole != "" {
		role, err := ParseRole(tr.peerRole)
		if err != nil {
			t.Fatal(err)
		}
		a.grants = []socketGrant{{key: "uid:self", byUID: true, id: uint32(os.Getuid()), role: role}}
	}
	sec.access.Store(a)
	lc := &fakeLifecycle{reload: ReloadResult{OK: true}, upgrade: UpgradeResult{OK: true, OldPID: 1, NewPID: 2}}
	srv := New(newFakeSource(), nil, zerolog.Nop(), Options{Security: sec, Lifecycle: lc, History: fakeHistory{}})
	client := http.DefaultClient
	base := ""
	if tr.unix {
		client = unixClient(serveUnix(t, srv))
		base = "http://splicer"
	} else {
		base = serveTCP(t, srv)
	}
	body := smp.body
	if tokenInBody {
		body = fmt.Sprintf(`{"token":%q}`, token)
	}
	req, err := http.NewRequest(method, base+smp.target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" && !tokenInBody {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost || method == http.MethodPut {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, len(readAudit(t, auditPath))
}

// TestPolicy pins the role table and each route's permission to what
// docs/security.md promises; the matrix checks that the server enforces
// these tables, this test that the tables say what they should.
func TestPolicy(t *testing.T) {
	roles := map[string]string{
		"viewer":   "stats.read connections.read",
		"operator": "stats.read connections.read backend.state backend.weight connection.kill",
		"admin":    "stats.read connections.read backend.state backend.weight connection.kill audit.read reload upgrade",
	}
	for name, want := range roles {
		if got := strings.Join(Role{Name: name}.Perms(), " "); got != want {
			t.Errorf("role %s grants %q, want %q", name, got, want)
		}
	}
	if len(rolePerms) != len(roles) {
		t.Errorf("%d roles, want %d", len(rolePerms), len(roles))
	}
	perms := map[string]string{
		"GET /{$}":                     "public",
		"GET /healthz":                 "public",
		"GET /readyz":                  "public",
		"GET /metrics":                 "stats.read",
		"GET /api/v1/stats":            "stats.read",
		"GET /api/v1/history":          "stats.read",
		"GET /api/v1/connections":      "connections.read",
		"GET /api/v1/session":          "public",
		"POST /api/v1/session":         "public",
		"DELETE /api/v1/session":       "stats.read",
		"GET /api/v1/audit/checkpoint": "audit.read",
		"POST /api/v1/frontends/{frontend}/backends/{backend}/state": "backend.state",
		"PUT /api/v1/frontends/{frontend}/backends/{backend}/weight": "backend.weight",
		"DELETE /api/v1/connections/{id}":                            "connection.kill",
		"POST /api/v1/reload":                                        "reload",
		"POST /api/v1/upgrade":                                       "upgrade",
		"GET /api/v1/state":                                          "stats.read",
	}
	routes := (&Server{}).routes()
	for _, rt := range routes {
		key := rt.method + " " + rt.path
		if want, ok := perms[key]; !ok || rt.perm.String() != want {
			t.Errorf("%s needs %s, want %q", key, rt.perm, want)
		}
	}
	if len(routes) != len(perms) {
		t.Errorf("%d routes, %d pinned", len(routes), len(perms))
	}
	if (Role{Name: "admin"}).Can(permUnset) || (Role{Name: "nobody"}).Can(PermStatsRead) {
		t.Error("an unset permission or an unknown role grants something")
	}
}
