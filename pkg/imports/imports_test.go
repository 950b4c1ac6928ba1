package imports

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/splicerlb/splicer/"

// allowed lists, for each package of the module (by path inside it), the
// packages of the module its non-test files may import. "*" allows every
// package of the module but the commands.
var allowed = map[string][]string{
	// Leaves: plain data and mechanisms that know nothing of the rest.
	"pkg/backend":               nil,
	"pkg/stats":                 nil,
	"pkg/resp":                  nil,
	"pkg/logging":               nil,
	"pkg/demo":                  nil,
	"pkg/proxyproto":            nil,
	"pkg/testutil":              nil,
	"l4/internal/netpoll":       nil,
	"l4/internal/sock":          nil,
	"l4/internal/timer":         nil,
	"l4/internal/sock/socktest": {"l4/internal/sock"},
	// The pipe and buffer carriers make their raw calls through sock's
	// EINTR-retrying Syscall6: one retry loop for the data plane.
	"l4/internal/splice": {"l4/internal/sock"},

	// The kernel relay (SOCKMAP) through raw bpf(2): a leaf on x/sys.
	// Measured and kept out of the daemon (docs/architecture.md, "No
	// kernel fast path"): only tests and benchmarks use it.
	"l4/internal/sockmap": nil,

	// Strategies read backends and nothing else.
	"pkg/balance": {"pkg/backend"},
	// The config takes the names and bounds it checks from their owners
	// (strategy names, the Maglev table's default and cap, the weight
	// bound), so that they are defined once; both import nothing of
	// ours but backend.
	"pkg/config": {"pkg/backend", "pkg/balance"},
	// The data plane: its own internals, backends, strategies, config.
	"l4": {"l4/internal/netpoll", "l4/internal/sock", "l4/internal/splice", "l4/internal/timer",
		"pkg/backend", "pkg/balance", "pkg/config", "pkg/proxyproto"},
	// Health checks know backends and config, never the data plane.
	"health":        {"pkg/backend", "pkg/config", "pkg/proxyproto", "pkg/resp"},
	"pkg/discovery": {"pkg/backend", "pkg/config", "pkg/resp"},
	// The admin API and the metrics read snapshots (pkg/stats) and declare
	// the interfaces they need: no l4, no daemon.
	"pkg/metrics": {"pkg/stats"},
	"pkg/history": {"pkg/stats"},
	"pkg/admin":   {"pkg/config", "pkg/stats"},
	// The composition root may use everything below the commands.
	"pkg/daemon": {"*"},
	// The commands: the daemon's and the bench tool's.
	"cmd/splicer":       {"pkg/admin", "pkg/config", "pkg/daemon", "pkg/demo", "pkg/logging"},
	"cmd/splicer-bench": {"pkg/proxyproto"},
	// The ECMP scale simulator runs splicer binaries in network namespaces.
	"cmd/splicer-scalesim":   nil,
	"pkg/testutil/realdb":    {"pkg/resp", "pkg/testutil"},
	"pkg/testutil/realproxy": {"pkg/testutil"},
	"pkg/testutil/cdp":       {"pkg/testutil"},

	// The audit tool (make audit, test-coverage, bench-check) runs go test,
	// staticcheck, govulncheck and benchstat as commands and reads their
	// output: it imports nothing of ours, nor any module but the standard
	// library, so no tool enters the module's dependencies.
	"cmd/splicer-audit": nil,
}

// thirdParty is every module outside the standard library that the
// module's non-test code may import: the design card's four, and
// golang.org/x/net for its DNS message codec (dnsmessage), which issue #19
// allows for DNS discovery.
var thirdParty = []string{
	"github.com/BurntSushi/toml",
	"github.com/prometheus/client_golang",
	"github.com/rs/zerolog",
	"golang.org/x/net",
	"golang.org/x/sys",
}

// testOnly are the packages only tests may import.
var testOnly = []string{"pkg/testutil", "pkg/testutil/realdb", "pkg/testutil/realproxy", "pkg/testutil/cdp", "l4/internal/sock/socktest"}

// imports returns, for each package directory of the module under root,
// the import paths its non-test Go files use.
func imports(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := make(map[string][]string)
	fset := token.NewFileSet()
	err := productFiles(root, func(path string) error {
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		dir = filepath.ToSlash(dir)
		if _, ok := out[dir]; !ok {
			out[dir] = []string{}
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !slices.Contains(out[dir], p) {
				out[dir] = append(out[dir], p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportPolicy(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root is not at %s: %v", root, err)
	}
	pkgs := imports(t, root)
	dirs := make([]string, 0, len(pkgs))
	for dir := range pkgs {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		if dir == "pkg/imports" {
			continue
		}
		rule, ok := allowed[dir]
		if !ok {
			t.Errorf("package %s has no rule in the import policy: add one to allowed", dir)
			continue
		}
		for _, p := range pkgs[dir] {
			switch {
			case strings.HasPrefix(p, module):
				to := strings.TrimPrefix(p, module)
				switch {
				case slices.Contains(testOnly, to) && !slices.Contains(testOnly, dir):
					t.Errorf("%s imports %s, which only tests may use", dir, to)
				case slices.Contains(rule, "*") && !strings.HasPrefix(to, "cmd/"):
				case !slices.Contains(rule, to):
					t.Errorf("%s imports %s; the policy allows it %v", dir, to, rule)
				}
			case !strings.Contains(strings.Split(p, "/")[0], "."):
				// the standard library
			default:
				if !slices.ContainsFunc(thirdParty, func(m string) bool { return p == m || strings.HasPrefix(p, m+"/") }) {
					t.Errorf("%s imports %s, a module outside the design card's four %v", dir, p, thirdParty)
				}
			}
		}
	}
	for dir := range allowed {
		if _, ok := pkgs[dir]; !ok {
			t.Errorf("the policy has a rule for %s, which has no Go file: remove it", dir)
		}
	}
}
