// Package realproxy starts real HAProxy and nginx processes for interop
// tests, on loopback, with configs the test writes into a temporary
// directory. A test whose proxy is not installed is skipped with the Debian
// package to install. Only _test.go files import it.
package realproxy
