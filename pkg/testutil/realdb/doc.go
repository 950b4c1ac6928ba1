// Package realdb starts real database servers for tests, on loopback, in
// temporary directories the test removes: PostgreSQL (a primary and
// streaming replicas), Redis (masters, replicas, Sentinels), MariaDB, and
// dnsmasq serving the DNS records of a discovery test.
// A test whose server is not installed is skipped with the Debian package
// to install. Only _test.go files import it.
package realdb
