// Command splicer is a Layer-4 TCP/UDP load balancer daemon.
//
// Usage:
//
//	splicer run     [-c FILE] [-log-level L] [-log-format F] [-demo]
//	splicer check   -c FILE
//	splicer version
//	splicer stats   [-json]
//	splicer top     [-interval D]
//	splicer conns   [-frontend F] [-limit N] [-json] | kill ID...
//	splicer backend drain|ready|maint|weight FRONTEND BACKEND [N]
//	splicer reload
//	splicer upgrade
//	splicer user    add|rotate|remove|list [-file USERS | -c FILE] ...
//	splicer audit   verify|checkpoint ...
//
// The commands that call the daemon take -admin ADDR (default
// $SPLICER_ADMIN, else 127.0.0.1:9090), -token-file FILE (default
// $SPLICER_TOKEN_FILE) and -cacert FILE, before, between or after their
// arguments.
//
// Exit codes: 0 success (check with warnings included); 1 the configuration
// is invalid, the daemon failed, or the daemon refused or could not be
// reached; 2 the command line is wrong.
package main
