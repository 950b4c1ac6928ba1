package config

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the path the config was read from; "" for a config built in
	// code.
	File string
	// Line is the 1-based line the problem is on; 0 when it is not known
	// (built in code, or a key inside an inline table).
	Line int
	// Path names the setting as the operator sees it: "global.workers",
	// `frontend "pg": backend[2].weight`, or `frontend[3]: name` for a
	// frontend without a usable name. It is "" for a problem with the file as
	// a whole, such as a TOML syntax error.
	Path string
	// Msg says what is wrong and, where it helps, what would be valid.
	Msg string
}

// String formats the problem as "file:line: path: message", leaving out the
// parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		b.WriteString(p.File + ": ")
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is the error Load, Parse and Builder.Build return for an invalid
// configuration. It holds every problem found, not just the first, in file
// order; problems without a line come last, in the order they were found.
type Error struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects what is wrong with one configuration so that all of it
// is reported at once.
type problems struct {
	file  string
	lines *lineIndex // nil for a config built in code
	list  []Problem
	// warnings are problems that do not make the config invalid, such as
	// a deprecated key; they end up in Config.Warnings.
	warnings []Problem
}

// add records a problem with the setting whose indexed path is key (such as
// "frontend[0].backend[2].weight"), shown to the operator as path.
func (ps *problems) add(key, path, msg string) {
	ps.addAt(ps.lines.lineOf(key), path, msg)
}

// addAt records a problem on a known line.
func (ps *problems) addAt(line int, path, msg string) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Path: path, Msg: msg})
}

// warn records a warning about the setting at key, shown as path.
func (ps *problems) warn(key, path, msg string) {
	ps.warnings = append(ps.warnings, Problem{File: ps.file, Line: ps.lines.lineOf(key), Path: path, Msg: msg})
}

// sortedWarnings returns the warnings in file order.
func (ps *problems) sortedWarnings() []Problem {
	slices.SortStableFunc(ps.warnings, func(a, b Problem) int {
		return cmp.Compare(lineOrder(a.Line), lineOrder(b.Line))
	})
	return ps.warnings
}

// err returns nil when nothing was found, else an *Error in file order.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	slices.SortStableFunc(ps.list, func(a, b Problem) int {
		return cmp.Compare(lineOrder(a.Line), lineOrder(b.Line))
	})
	return &Error{Problems: ps.list}
}

// lineOrder sorts unknown lines (0) after every known one.
func lineOrder(line int) int {
	if line == 0 {
		return math.MaxInt
	}
	return line
}
