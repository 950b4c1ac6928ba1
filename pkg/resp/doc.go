// Package resp reads and writes RESP2, the Redis serialization protocol, for
// the Redis health probes and Sentinel discovery: commands are arrays of
// bulk strings, replies are read whole into a Value. Every reply is bounded
// (line length, bulk size, element count, nesting, total bytes), so a
// hostile or broken server gets an error, never an unbounded buffer.
package resp
