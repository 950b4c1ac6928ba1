// Command splicer-bench measures splicer side by side with direct loopback,
// HAProxy (tcp mode), nginx (stream) and a goroutine-per-connection io.Copy
// proxy, and prints one markdown table. `make bench` runs it. The UDP tests
// (-tests udp, or all) run on direct, splicer and nginx only: HAProxy and
// the io.Copy proxy relay TCP alone, and their UDP cells read "-". The app
// tests run redis-benchmark and pgbench against real servers the harness
// starts (each skipped, saying what to install, when its programs are
// missing); the health test runs on the targets with active health checks,
// splicer and HAProxy.
//
// Usage:
//
//	splicer-bench -splicer bin/splicer [-tests all|tcp,udp,app,health] [-run REGEXP]
//	              [-rounds 3] [-duration 5s] [-idle 8000] [-splicer-idle 9000]
//	              [-only splicer,haproxy,...] [-out FILE] [-json FILE] [-gobench FILE] [-svg DIR]
//	splicer-bench plot -json FILE [-gobench FILE] -svg DIR
//
// -json writes the results file, every round's values by target and row;
// the plot subcommand (or -svg at the end of a run) draws the side-by-side
// and cost-growth charts from it, with the Pick costs of a `go test -bench`
// output given with -gobench.
//
// It installs nothing: iperf3 must be on PATH for the TCP tests, and a
// missing HAProxy, nginx (with its stream module) or splicer binary skips
// that column with the package to install. Every proxy and backend is a
// child process on loopback that the harness starts, measures through
// /proc, and stops by PID; the temporary directory holding their configs is
// removed on exit, Ctrl-C included.
//
// Exit codes: 0 the report was printed; 1 the run failed or was
// interrupted; 2 the command line is wrong.
//
// The echo, udpecho and iocopy subcommands are internal: the harness
// re-executes itself with them to run the TCP and UDP echo backends and the
// io.Copy proxy as separate processes.
package main
