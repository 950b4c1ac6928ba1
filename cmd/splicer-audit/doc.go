// Command splicer-audit measures splicer against the quality bar the
// project set itself, and holds the hot paths to a benchmark baseline.
// The Makefile runs it; each subcommand is one target:
//
//	make test-coverage   splicer-audit coverage     statement coverage per package
//	make audit           splicer-audit report       every check below, written to docs/CODE_AUDIT_REPORT.md
//	make bench-check     splicer-audit bench-check  micro-benchmarks against a baseline commit
//	                     splicer-audit docs         exported names without a doc comment
//	                     splicer-audit vulndb       builds the offline vulnerability database
//
// Run `splicer-audit SUBCOMMAND -h` for the flags of each. It runs from
// the module root (the Makefile's directory).
//
// It imports nothing outside the standard library, so that no tool enters
// the module's dependencies: staticcheck, govulncheck and benchstat run as
// `go run MODULE/cmd/TOOL@VERSION`, at the versions its flags name and the
// Makefile pins, and the vulnerability database is built from the
// golang.org/x/vulndb module at a pinned version, fetched from the Go
// module proxy. Nothing else it does needs the network.
//
// Exit codes: 0 the check passed (or the report was written); 1 a check
// failed or could not run; 2 the command line is wrong.
package main
