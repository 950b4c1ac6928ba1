// Command splicer-scalesim runs splicer scaled out behind ECMP, for real,
// in network namespaces it creates on this machine, and prints what it
// measured as markdown. `make scale-sim` runs it (as root).
//
// Three splicer processes share one config (maglev, backends from the SRV
// records of a dnsmasq) in three namespaces; a router namespace spreads a
// virtual IP over them with a Linux multipath route hashed on the 5-tuple;
// a client namespace connects from 10000 source addresses. It measures:
//
//   - agreement: each client address asks each instance directly which
//     backend it gets;
//   - the clients that move when one of the 10 backends leaves the DNS
//     records (the ideal is a tenth, all of them that backend's);
//   - what happens to the clients of an instance taken out of the
//     multipath set (hash-threshold and resilient nexthop groups), with
//     maglev and with roundrobin: their connections, and the backend
//     their reconnection reaches.
//
// Usage:
//
//	splicer-scalesim -splicer bin/splicer [-clients 10000] [-held 2000] [-out FILE]
//
// Everything it starts (namespaces, dnsmasq, splicer processes) it stops
// and deletes on exit, Ctrl-C included. Traffic stays inside its
// namespaces, in 198.18.0.0/15 (RFC 2544's benchmarking range).
//
// Exit codes: 0 the report was printed; 1 the run failed; 2 the command
// line is wrong or the machine lacks root, ip(8) or dnsmasq.
package main
