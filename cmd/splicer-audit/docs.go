package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// runDocs lists the exported names without a doc comment and fails when
// there is one.
func runDocs(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("docs")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: splicer-audit docs\n\nLists the exported names of the module's packages (package main aside) that\nhave no doc comment; exits 1 when there is one.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	names, err := exportedNames(root)
	if err != nil {
		return err
	}
	total, missing := 0, 0
	for _, c := range countDocs(names) {
		total += c.names
		for _, n := range c.undocumented {
			fmt.Fprintf(stdout, "%s:%d: %s has no doc comment\n", n.file, n.line, n.name)
			missing++
		}
	}
	fmt.Fprintf(stdout, "%d of %d exported names documented\n", total-missing, total)
	if missing > 0 {
		return fmt.Errorf("%w: %d exported names without a doc comment", errFailed, missing)
	}
	return nil
}

// moduleRoot returns the working directory, which must be the module's
// root: every subcommand reads or runs the module from there.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(wd, "go.mod")); err != nil {
		return "", fmt.Errorf("run splicer-audit from the module root (the directory of go.mod): %w", err)
	}
	return wd, nil
}
