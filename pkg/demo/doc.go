// Package demo runs small TCP backends for trying splicer out: each greets a
// new client with its own address, then echoes what it receives. `splicer
// run -demo` starts one on every loopback backend address of the config, so
// `make run` shows balancing end to end on a fresh machine.
package demo
