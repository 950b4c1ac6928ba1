// Package history keeps the last minutes of every frontend and backend as
// per-second samples: connection and byte rates, active connections, the
// queue, errors by kind and connect-time quantiles. It is fed readings of
// the cumulative counters the data plane keeps anyway, once a second, by
// one goroutine off the event loops, and turns them into rates itself: the
// data path does no work for it.
//
// Memory is fixed per series: a ring of Seconds samples of fixed size
// (SampleBytes each), allocated when the series first appears and dropped
// when its frontend or backend leaves the config.
package history
