package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestExportedNamesDocumented is the project's rule that every exported
// name has a doc comment: it fails naming each one that has none.
func TestExportedNamesDocumented(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	names, err := exportedNames(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 500 {
		t.Fatalf("found only %d exported names under %s: the walk is broken", len(names), root)
	}
	for _, n := range names {
		if !n.doc {
			t.Errorf("%s:%d: exported %s has no doc comment", n.file, n.line, n.name)
		}
	}
}

// TestExportedNamesRules checks what counts as an exported name and as its
// documentation, on a module written for the test.
func TestExportedNamesRules(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) { writeTree(t, root, map[string]string{rel: text}) }
	write("go.mod", "module example.com/m\n")
	write("p/p.go", `// Package p is documented.
package p

// Documented is documented.
func Documented() {}

func Bare() {}

//
func EmptyDoc() {}

func unexported() {}

// T is a type.
type T struct{ Field int }

func (T) Method() {}

// Doc is documented.
func (*T) Doc() {}

type u struct{}

func (u) Hidden() {}

// G is generic.
type G[K comparable, V any] struct{}

func (g *G[K, V]) Get() {}

type Naked int

// Grouped types share the group's comment.
type (
	A int
	B int
)

const (
	One = 1 // a line comment documents a grouped constant
	Two = 2
)

// Group doc covers every spec.
var (
	X, Y int
)

var Lone = 3 // a line comment does not document an ungrouped declaration
`)
	write("p/p_test.go", "package p\n\nfunc TestOnly() {}\n")
	write("p/testdata/q.go", "package q\n\nfunc Skipped() {}\n")
	write("cmd/c/main.go", "package main\n\nfunc Exported() {}\n\nfunc main() {}\n")
	names, err := exportedNames(root)
	if err != nil {
		t.Fatal(err)
	}
	var documented, undocumented []string
	for _, n := range names {
		if n.pkg != "p" || n.file != "p/p.go" {
			t.Errorf("%s found in %s (%s); want only p/p.go", n.name, n.file, n.pkg)
		}
		if n.doc {
			documented = append(documented, n.name)
		} else {
			undocumented = append(undocumented, n.name)
		}
	}
	wantDoc := []string{"Documented", "T", "T.Doc", "G", "A", "B", "One", "X", "Y"}
	wantUndoc := []string{"Bare", "EmptyDoc", "T.Method", "G.Get", "Naked", "Two", "Lone"}
	slices.Sort(documented)
	slices.Sort(undocumented)
	slices.Sort(wantDoc)
	slices.Sort(wantUndoc)
	if !slices.Equal(documented, wantDoc) {
		t.Errorf("documented = %v; want %v", documented, wantDoc)
	}
	if !slices.Equal(undocumented, wantUndoc) {
		t.Errorf("undocumented = %v; want %v", undocumented, wantUndoc)
	}
	counts := countDocs(names)
	if len(counts) != 1 || counts[0].pkg != "p" || counts[0].names != len(wantDoc)+len(wantUndoc) || len(counts[0].undocumented) != len(wantUndoc) {
		t.Errorf("countDocs = %+v", counts)
	}
}

// writeTree writes files (path relative to root → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, text := range files {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
