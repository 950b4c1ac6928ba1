// Package testutil holds small helpers shared by splicer's tests: a log
// sink safe for concurrent writers (SyncBuffer), a condition wait with a
// deadline (WaitFor, the only way tests wait), an address that refuses for
// as long as the test runs (RefusedAddr), ports held or reserved for
// servers that cannot pick their own (HoldPort, ReserveTCP, FreeUDPAndTCP),
// raw loopback listeners that never accept or whose backlog is full
// (ListenRaw, FullListener), a lock shared by test processes for tests that
// must not overlap (Exclusive), a CA for TLS tests (NewCA), a run of a test
// as user nobody (RunAsNobody), a count of open fds (OpenFDs), the open-file limit lowered for one call
// and the lowest free descriptor to show it leaked none (AtFileLimit,
// LowestFreeFD), and the
// stop of child processes that lets a coverage run count their code
// (StopProcesses, ChildCoverDir). Its subpackages start real programs for
// tests: cdp (headless Chromium), realdb (PostgreSQL, Redis, MariaDB,
// dnsmasq) and realproxy (HAProxy, nginx). Only _test.go files import it.
package testutil
