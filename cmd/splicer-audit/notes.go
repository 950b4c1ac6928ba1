package main

// The prose of the report that a measurement cannot produce: how coverage
// is measured, and why what remains uncovered does. Keep it true when the
// figures move; `make audit` copies it into docs/CODE_AUDIT_REPORT.md.

// notes are the report's fixed paragraphs, by topic.
var notes = map[string]string{
	"coverage-method": "A statement counts as covered when any test of the module runs it: every test binary instruments every product package (`-coverpkg`), and the profiles are merged. So the daemon's end-to-end tests count for the l4 code they drive, as the l4 tests do. Code that only runs in a child process (cmd/splicer's process tests run the test binary as `splicer`) is not counted: a test binary writes no coverage from a child.",
	"coverage":        "",
	"govulncheck":     "go.mod says go 1.26.8, the Go installed on the project's machines and CI's. No 1.26 release after it is available to them; the newer Go they can take is go1.27.3 (GOTOOLCHAIN=go1.27.3, from the Go module proxy), and govulncheck's query mode against the same database reports no vulnerability in its standard library. Moving to it is a project decision (every machine and CI build with it), so it is left to the lead; until then these findings stand, and CI does not gate on govulncheck (`make audit-ci` runs documented names and staticcheck).",
}

// coverageNotes say, per product package, why what remains uncovered does.
var coverageNotes = map[string]string{}
