// Package imports holds no code. Its test is the project's import policy,
// stated once as a table in the manner of the Go tree's
// go/build/deps_test.go: which of the project's packages each package may
// import, and which third-party modules the product may use at all. A
// change that crosses a layer fails the test with the rule it broke, so the
// layering of docs/architecture.md cannot erode by accident; a new package
// needs a rule before its first import of ours.
package imports
