package imports

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Log lines give durations in seconds with the unit in the field name
// (docs/operations.md): Float64("took_seconds", d.Seconds()). zerolog's
// Dur, Durs and TimeDiff write milliseconds (zerolog.DurationFieldUnit)
// under whatever name the call gives, so no product code calls them, and a
// field made of a Seconds() value is named *_seconds.
func TestLogDurationsInSeconds(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := 0
	err = productFiles(root, func(path string) error {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		for _, p := range durationFields(f) {
			pos := fset.Position(p.pos)
			rel, _ := filepath.Rel(root, pos.Filename)
			t.Errorf("%s:%d: %s", filepath.ToSlash(rel), pos.Line, p.what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read %d files under %s: not the module's tree", files, root)
	}
}

// productFiles calls fn with the path of each Go file of the product under
// root: not tests, not testdata, not hidden directories.
func productFiles(root string, fn func(path string) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		return fn(path)
	})
}

// durationProblem is a log field that breaks the rule.
type durationProblem struct {
	pos  token.Pos
	what string
}

// durationFields finds, in f, the calls of zerolog's duration fields and
// the Float64 fields of a Seconds() value not named *_seconds.
func durationFields(f *ast.File) []durationProblem {
	var out []durationProblem
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		switch sel.Sel.Name {
		case "Dur", "Durs", "TimeDiff":
			out = append(out, durationProblem{sel.Sel.Pos(), sel.Sel.Name + "(" + keyOf(call) +
				", …) logs milliseconds: use Float64(\"…_seconds\", d.Seconds())"})
		case "Float64":
			if len(call.Args) == 2 && isSeconds(call.Args[1]) {
				if key := keyOf(call); !strings.HasSuffix(key, `_seconds"`) {
					out = append(out, durationProblem{sel.Sel.Pos(), "Float64(" + key + ", ….Seconds()): name the field *_seconds"})
				}
			}
		}
		return true
	})
	return out
}

// keyOf is the call's first argument as written (a field name, quoted).
func keyOf(call *ast.CallExpr) string {
	if len(call.Args) == 0 {
		return ""
	}
	if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
		if s, err := strconv.Unquote(lit.Value); err == nil {
			return strconv.Quote(s)
		}
	}
	return "<expression>"
}

// isSeconds reports whether e is a call of a Seconds method: x.Seconds().
func isSeconds(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Seconds"
}

// The rule finds what it is for: a Dur field, and a Seconds() value under
// a name without the unit; a field named *_seconds passes.
func TestDurationFieldsFinds(t *testing.T) {
	src := `package p
func f() {
	log.Info().Dur("took", d).Msg("x")
	log.Info().
		Durs("waits", ds).Msg("x")
	log.Info().Float64("interval", d.Seconds()).Float64("took_seconds", d.Seconds()).Float64("ratio", r).Msg("x")
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range durationFields(f) {
		got = append(got, strconv.Itoa(fset.Position(p.pos).Line)+": "+p.what)
	}
	want := []string{
		`3: Dur("took", …) logs milliseconds: use Float64("…_seconds", d.Seconds())`,
		`5: Durs("waits", …) logs milliseconds: use Float64("…_seconds", d.Seconds())`,
		`6: Float64("interval", ….Seconds()): name the field *_seconds`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
