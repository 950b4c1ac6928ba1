package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
)

// exported is one exported name of a non-main package: a constant,
// variable, type, function, or a method of an exported type.
type exported struct {
	pkg  string // directory inside the module, slash-separated
	name string // "Name" or "Type.Method"
	file string // relative to the module root, slash-separated
	line int
	doc  bool // has a doc comment (its own, its group's or a line comment in a group)
}

// docCount is how many exported names a package has, and how many of them
// lack a doc comment.
type docCount struct {
	pkg          string
	names        int
	undocumented []exported
}

// exportedNames returns every exported name declared by the non-test Go
// files under root, skipping package main (its names are exported to no
// one), testdata and hidden directories. What counts as documented is what
// `go doc` shows for the name:
//   - a function, method or type: a doc comment on its declaration (for a
//     type in a parenthesized group, on the group also counts);
//   - a constant or variable: a doc comment on its spec or on its group, or,
//     inside a group, a line comment after it.
//
// Methods count only on exported types, fields and interface methods not
// at all: go doc shows them within their type's documentation.
func exportedNames(root string) ([]exported, error) {
	var out []exported
	fset := token.NewFileSet()
	err := walkGoFiles(root, false, func(path string) error {
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(rel))
		add := func(name string, at token.Pos, doc bool) {
			out = append(out, exported{pkg: dir, name: name, file: filepath.ToSlash(rel), line: fset.Position(at).Line, doc: doc})
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if !decl.Name.IsExported() {
					continue
				}
				name := decl.Name.Name
				if decl.Recv != nil {
					recv := receiverType(decl.Recv)
					if recv == "" || !ast.IsExported(recv) {
						continue
					}
					name = recv + "." + name
				}
				add(name, decl.Pos(), hasText(decl.Doc))
			case *ast.GenDecl:
				grouped := decl.Lparen.IsValid()
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						if spec.Name.IsExported() {
							add(spec.Name.Name, spec.Pos(), hasText(spec.Doc) || hasText(decl.Doc))
						}
					case *ast.ValueSpec:
						doc := hasText(spec.Doc) || hasText(decl.Doc) || (grouped && hasText(spec.Comment))
						for _, n := range spec.Names {
							if n.IsExported() {
								add(n.Name, n.Pos(), doc)
							}
						}
					}
				}
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].pkg != out[j].pkg {
			return out[i].pkg < out[j].pkg
		}
		if out[i].file != out[j].file {
			return out[i].file < out[j].file
		}
		return out[i].line < out[j].line
	})
	return out, err
}

// receiverType returns the name of a method's receiver type, without its
// pointer or type parameters.
func receiverType(recv *ast.FieldList) string {
	if recv == nil || len(recv.List) == 0 {
		return ""
	}
	t := recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.ParenExpr:
			t = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// hasText reports whether a comment group says something: a bare "//"
// documents nothing.
func hasText(g *ast.CommentGroup) bool {
	return g != nil && strings.TrimSpace(g.Text()) != ""
}

// countDocs groups names by package, in package order.
func countDocs(names []exported) []docCount {
	var out []docCount
	for _, n := range names {
		if len(out) == 0 || out[len(out)-1].pkg != n.pkg {
			out = append(out, docCount{pkg: n.pkg})
		}
		c := &out[len(out)-1]
		c.names++
		if !n.doc {
			c.undocumented = append(c.undocumented, n)
		}
	}
	return out
}

// walkGoFiles calls fn with the path of every Go file under root: its
// _test.go files when tests is set, its other Go files otherwise. It skips
// testdata and the directories whose name starts with "." or "_", as the
// go command does.
func walkGoFiles(root string, tests bool, fn func(path string) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") != tests {
			return nil
		}
		return fn(path)
	})
}
