package l4

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Connection log formats (SetLogFormat).
const (
	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// LogOutput is where the connection log goes.
type LogOutput struct {
	// W receives whole lines, many per Write.
	W io.Writer
	// Shared says that others write to W too (the daemon's log on
	// stderr): the writer then writes at most PIPE_BUF bytes of whole
	// lines at a time, which the kernel never interleaves with another
	// writer's.
	Shared bool
	// Closer, when set, is closed once the server writes to W no more:
	// another output replaced this one, or the server stopped. The writer
	// closes it after its last write, so no line is cut off.
	Closer io.Closer
}

const (
	// pipeBuf is PIPE_BUF: a write to a pipe up to this size is atomic.
	pipeBuf = 4096
	// ownWriteSize is the most written at a time to a destination of
	// the connection log's own.
	ownWriteSize = 64 << 10
	// summaryEvery spaces the "lines dropped" summaries, so a writer
	// that keeps falling behind adds one line a second, not one per pass.
	summaryEvery = time.Second
	// writerStopWait bounds how long stopping the server waits for the
	// writer to write what is left; a destination that blocks longer
	// loses those lines, and the writer ends once its write returns.
	writerStopWait = 2 * time.Second
	// logTimeFormat is RFC 3339 with milliseconds, in UTC.
	logTimeFormat = "2006-01-02T15:04:05.000Z07:00"
)

// connLog is a server's connection log: the rings its loops fill, the
// output, and the writer goroutine that drains the rings into the output.
type connLog struct {
	srv     *Server
	size    int                       // records per ring
	rings   []atomic.Pointer[logRing] // by loop id; nil until the loop's first record
	enabled atomic.Bool               // an output is set
	console atomic.Bool               // the console form, not JSON

	// outMu guards next and inUse: next is the output set last (nil:
	// none), inUse the one the writer writes to, which only the writer
	// changes (see output).
	outMu sync.Mutex
	next  *LogOutput
	inUse *LogOutput

	// sleeping is how the writer waits (awake, batching or idle), set
	// before it waits for wake: see notify.
	sleeping atomic.Int32
	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	started  bool // set by start, before the loops run

	lines     atomic.Uint64 // lines written
	lostWrite atomic.Uint64 // lines lost to failed writes

	// The writer's own state.
	buf        []byte
	reported   uint64    // ring drops already in a summary line
	lastSumm   time.Time // time of the last summary line
	lastErrLog time.Time // time of the last "write failed" line in the daemon's log
}

func newConnLog(s *Server, loops, size int) *connLog {
	return &connLog{
		srv: s, size: size,
		rings: make([]atomic.Pointer[logRing], loops),
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// SetLogOutput sends the connection log to o, from the next line on; a
// zero LogOutput (nil W) turns it off. Without a call the server writes
// no connection log. Safe to call at any time, and again at a reload to
// change the destination.
func (s *Server) SetLogOutput(o LogOutput) {
	c := s.connlog
	var next *LogOutput
	if o.W != nil {
		next = &o
	}
	c.outMu.Lock()
	old := c.next
	c.next = next
	c.enabled.Store(next != nil)
	unused := old != nil && old != c.inUse
	c.outMu.Unlock()
	if unused {
		// Replaced before the writer ever wrote to it.
		old.close()
	}
}

// SetLogFormat makes the connection log's lines LogFormatConsole or
// (anything else) LogFormatJSON from the next line on. JSON is the
// default.
func (s *Server) SetLogFormat(format string) {
	s.connlog.console.Store(format == LogFormatConsole)
}

func (o *LogOutput) close() {
	if o.Closer != nil {
		_ = o.Closer.Close()
	}
}

// output is the output to write to now; the writer's goroutine calls it
// before each pass, and closes the output it leaves.
func (c *connLog) output() *LogOutput {
	c.outMu.Lock()
	prev, next := c.inUse, c.next
	c.inUse = next
	c.outMu.Unlock()
	if prev != nil && prev != next {
		prev.close()
	}
	return next
}

// release closes the outputs at the end: the writer's, and one set after
// its last pass.
func (c *connLog) release() {
	c.outMu.Lock()
	inUse, next := c.inUse, c.next
	c.inUse, c.next = nil, nil
	c.enabled.Store(false)
	c.outMu.Unlock()
	if inUse != nil {
		inUse.close()
	}
	if next != nil && next != inUse {
		next.close()
	}
}

// ConnLogCounters are the connection log's counters.
type ConnLogCounters struct {
	// Lines counts the lines written (summaries not included).
	Lines uint64
	// DroppedFull counts lines dropped because a loop's ring was full:
	// the writer could not keep up, or its destination blocked.
	DroppedFull uint64
	// DroppedWrite counts lines lost because the destination refused
	// them (a write error: disk full, a closed pipe).
	DroppedWrite uint64
}

// ConnLogCounters returns the connection log's counters, summed over the
// loops.
func (s *Server) ConnLogCounters() ConnLogCounters {
	c := s.connlog
	out := ConnLogCounters{Lines: c.lines.Load(), DroppedWrite: c.lostWrite.Load()}
	out.DroppedFull = c.ringDrops()
	return out
}

// ringFor makes loop id's ring; the loop's own goroutine calls it once.
func (c *connLog) ringFor(id int) *logRing {
	if !c.enabled.Load() {
		return nil
	}
	r := newLogRing(c.size)
	c.rings[id].Store(r)
	return r
}

// ringDrops sums the rings' drop counts.
func (c *connLog) ringDrops() uint64 {
	var n uint64
	for i := range c.rings {
		if r := c.rings[i].Load(); r != nil {
			n += r.dropped.Load()
		}
	}
	return n
}

// The writer's ways of waiting. After a drain that found records it
// batches: it sleeps for logBatchWait, and a loop wakes it sooner only when
// its ring is half full, so that a steady stream of connections costs one
// wake-up and one write per batch instead of one per connection (which on
// the connection-rate load cost a quarter more CPU per connection). After
// a drain that found none it is idle: the next record wakes it at once,
// so a line is never later than logBatchWait.
const (
	writerAwake int32 = iota
	writerBatching
	writerIdle
)

// logBatchWait is how long the writer lets records gather while they keep
// coming: what a line may wait in a ring (nginx's access_log flush= is
// the same trade, in seconds).
const logBatchWait = 50 * time.Millisecond

// notify wakes the writer if it waits for r's record: always when it is
// idle, only once r is half full while it batches. A loop calls it after
// each publish: one atomic load while the writer is awake.
func (c *connLog) notify(r *logRing) {
	switch c.sleeping.Load() {
	case writerAwake:
		return
	case writerBatching:
		if r.pending() < uint64(len(r.recs))/2 {
			return
		}
	}
	if st := c.sleeping.Load(); st != writerAwake && c.sleeping.CompareAndSwap(st, writerAwake) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// start runs the writer; the server calls it once, from Start.
func (c *connLog) start() {
	c.started = true
	go c.run()
}

// stop asks the writer to write what the rings hold and to end, and waits
// for it up to writerStopWait. The loops must have stopped.
func (c *connLog) stop() {
	if !c.started {
		c.release()
		return
	}
	c.stopOnce.Do(func() { close(c.quit) })
	t := time.NewTimer(writerStopWait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.srv.log.Warn().Float64("waited_seconds", writerStopWait.Seconds()).
			Msg("connection log: the destination blocks; lines still held are lost")
	}
}

// run is the writer goroutine: it drains the rings, writes, and sleeps
// until a loop publishes a record or a summary is due.
func (c *connLog) run() {
	defer close(c.done)
	var summary *time.Timer
	var summaryC <-chan time.Time
	batch := time.NewTimer(logBatchWait)
	batch.Stop()
	defer batch.Stop()
	for {
		busy := c.drain()
		due := c.summarise(false)
		c.flush()
		if due > 0 && summaryC == nil {
			summary = time.NewTimer(due)
			summaryC = summary.C
		}
		var batchC <-chan time.Time
		if busy {
			// Records came: let the next ones gather.
			c.sleeping.Store(writerBatching)
			batch.Reset(logBatchWait)
			batchC = batch.C
		} else {
			// Sequentially consistent atomics: either this check sees
			// a record published after the drain, or its loop sees
			// the writer idle and wakes it.
			c.sleeping.Store(writerIdle)
			if c.pending() {
				c.sleeping.Store(writerAwake)
				continue
			}
		}
		select {
		case <-c.wake:
			batch.Stop()
		case <-batchC:
			c.sleeping.Store(writerAwake)
		case <-summaryC:
			summaryC = nil
			c.sleeping.Store(writerAwake)
			batch.Stop()
		case <-c.quit:
			c.sleeping.Store(writerAwake)
			if summary != nil {
				summary.Stop()
			}
			c.drain()
			c.summarise(true)
			c.flush()
			c.release()
			return
		}
	}
}

// pending reports whether any ring holds records.
func (c *connLog) pending() bool {
	for i := range c.rings {
		if r := c.rings[i].Load(); r != nil && r.pending() > 0 {
			return true
		}
	}
	return false
}

// drain formats every published record into buf, writing as buf fills,
// and reports whether it found any.
func (c *connLog) drain() bool {
	out := c.output()
	found := false
	for i := range c.rings {
		r := c.rings[i].Load()
		if r == nil {
			continue
		}
		head, tail := r.head.Load(), r.tail.Load()
		n := uint64(len(r.recs))
		for ; head != tail; head++ {
			found = true
			if out != nil {
				c.add(out, &r.recs[head%n])
			}
			r.head.Store(head + 1)
		}
	}
	return found
}

// add formats one record and writes the buffer when it is full.
func (c *connLog) add(out *LogOutput, rec *logRecord) {
	limit := ownWriteSize
	if out.Shared {
		limit = pipeBuf
	}
	start := len(c.buf)
	if c.console.Load() {
		c.buf = appendConsoleRecord(c.buf, rec)
	} else {
		c.buf = appendJSONRecord(c.buf, rec)
	}
	if len(c.buf) > limit && start > 0 {
		c.write(out, c.buf[:start])
		c.buf = append(c.buf[:0], c.buf[start:]...)
	}
}

// flush writes what buf holds.
func (c *connLog) flush() {
	if len(c.buf) == 0 {
		return
	}
	if out := c.inUse; out != nil {
		c.write(out, c.buf)
	}
	c.buf = c.buf[:0]
}

// write writes whole lines to out, counting them as written or lost.
func (c *connLog) write(out *LogOutput, p []byte) {
	lines := uint64(bytes.Count(p, []byte{'\n'}))
	_, err := out.W.Write(p)
	if err == nil {
		c.lines.Add(lines)
		return
	}
	c.lostWrite.Add(lines)
	if now := time.Now(); now.Sub(c.lastErrLog) >= acceptLogEvery {
		c.lastErrLog = now
		c.srv.log.Error().Err(err).Uint64("lines_lost", c.lostWrite.Load()).
			Msg("connection log: writing failed; lines lost")
	}
}

// summarise writes a line with the count of records dropped since the last
// such line, at most one per summaryEvery unless final. It returns how long
// until the next summary may go out when drops wait to be reported.
func (c *connLog) summarise(final bool) time.Duration {
	dropped := c.ringDrops() - c.reported
	if dropped == 0 {
		return 0
	}
	now := time.Now()
	if wait := summaryEvery - now.Sub(c.lastSumm); wait > 0 && !final {
		return wait
	}
	out := c.inUse
	if out == nil {
		return 0
	}
	c.reported += dropped
	c.lastSumm = now
	c.flush()
	if c.console.Load() {
		c.buf = appendConsoleSummary(c.buf, now, dropped)
	} else {
		c.buf = appendJSONSummary(c.buf, now, dropped)
	}
	// Not counted in lines, which counts connections logged.
	_, _ = out.W.Write(c.buf)
	c.buf = c.buf[:0]
	return 0
}

// lineMessage and summaryMessage are the message fields of the two kinds
// of line, connComponent their component.
const (
	tcpMessage     = "connection closed"
	udpMessage     = "flow closed"
	summaryMessage = "connection log lines dropped: the writer fell behind"
	connComponent  = "connlog"
)

// appendJSONRecord appends rec as one JSON line. Field names are
// documented in docs/operations.md ("Connection log").
func appendJSONRecord(b []byte, r *logRecord) []byte {
	b = append(b, `{"level":"info","time":"`...)
	b = r.end.UTC().AppendFormat(b, logTimeFormat)
	b = append(b, `","component":"`+connComponent+`","connection_id":`...)
	b = strconv.AppendUint(b, r.id, 10)
	b = append(b, `,"protocol":"`...)
	if r.udp {
		b = append(b, `udp"`...)
	} else {
		b = append(b, `tcp"`...)
	}
	b = appendJSONField(b, "frontend", r.frontend)
	b = append(b, `,"client":"`...)
	b = r.client.AppendTo(b)
	b = append(b, `","listen":"`...)
	b = r.listen.AppendTo(b)
	b = append(b, '"')
	if r.be != nil {
		b = appendJSONField(b, "backend", r.be.Name())
		b = append(b, `,"backend_address":"`...)
		b = r.be.Address().AppendTo(b)
		b = append(b, '"')
	}
	if !r.udp {
		b = append(b, `,"tries":[`...)
		for i := 0; i < int(r.ntried); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendJSONString(append(b, `"backend":`...), r.tried[i].Name())
			b = append(b, `,"result":"`...)
			b = append(b, r.results[i].String()...)
			b = append(b, `"}`...)
		}
		b = append(b, ']')
		b = appendSecondsField(b, `,"queue_seconds":`, r.queue)
		b = appendSecondsField(b, `,"connect_seconds":`, r.connect)
	} else {
		b = appendSecondsField(b, `,"reply_seconds":`, r.ready)
	}
	b = appendSecondsField(b, `,"duration_seconds":`, r.end.Sub(r.start))
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendUint(b, r.bytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendUint(b, r.bytesOut, 10)
	if r.udp {
		b = append(b, `,"datagrams_in":`...)
		b = strconv.AppendUint(b, r.dgramsIn, 10)
		b = append(b, `,"datagrams_out":`...)
		b = strconv.AppendUint(b, r.dgramsOut, 10)
	}
	b = append(b, `,"cause":"`...)
	b = append(b, r.cause.String()...)
	b = append(b, `","error":`...)
	b = strconv.AppendBool(b, r.error)
	b = append(b, `,"message":"`...)
	if r.udp {
		b = append(b, udpMessage...)
	} else {
		b = append(b, tcpMessage...)
	}
	return append(b, "\"}\n"...)
}

func appendJSONSummary(b []byte, now time.Time, dropped uint64) []byte {
	b = append(b, `{"level":"warn","time":"`...)
	b = now.UTC().AppendFormat(b, logTimeFormat)
	b = append(b, `","component":"`+connComponent+`","dropped":`...)
	b = strconv.AppendUint(b, dropped, 10)
	return append(b, `,"message":"`+summaryMessage+"\"}\n"...)
}

func appendJSONField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

// appendSecondsField appends a duration in seconds with microseconds.
func appendSecondsField(b []byte, key string, d time.Duration) []byte {
	return strconv.AppendFloat(append(b, key...), max(d, 0).Seconds(), 'f', 6, 64)
}

// appendJSONString appends s quoted as a JSON string. Backend names are
// free text in the config: quotes, control characters and invalid UTF-8
// are escaped, so every line parses.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\t':
				b = append(b, '\\', 't')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendConsoleRecord appends rec in the console form: the daemon's
// console lines' layout (time, level, message, key=value fields) without
// colours, so it reads the same on a terminal and in a file.
func appendConsoleRecord(b []byte, r *logRecord) []byte {
	b = r.end.UTC().AppendFormat(b, logTimeFormat)
	b = append(b, " INF "...)
	if r.udp {
		b = append(b, udpMessage...)
	} else {
		b = append(b, tcpMessage...)
	}
	b = append(b, " component="+connComponent+" connection_id="...)
	b = strconv.AppendUint(b, r.id, 10)
	if r.udp {
		b = append(b, " protocol=udp"...)
	} else {
		b = append(b, " protocol=tcp"...)
	}
	b = appendConsoleField(b, "frontend", r.frontend)
	b = append(b, " client="...)
	b = r.client.AppendTo(b)
	b = append(b, " listen="...)
	b = r.listen.AppendTo(b)
	if r.be != nil {
		b = appendConsoleField(b, "backend", r.be.Name())
		b = append(b, " backend_address="...)
		b = r.be.Address().AppendTo(b)
	}
	if !r.udp {
		b = append(b, " tries="...)
		if r.ntried == 0 {
			b = append(b, '-')
		}
		for i := 0; i < int(r.ntried); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendConsoleValue(b, r.tried[i].Name())
			b = append(b, ':')
			b = append(b, r.results[i].String()...)
		}
		b = appendSecondsField(b, " queue_seconds=", r.queue)
		b = appendSecondsField(b, " connect_seconds=", r.connect)
	} else {
		b = appendSecondsField(b, " reply_seconds=", r.ready)
	}
	b = appendSecondsField(b, " duration_seconds=", r.end.Sub(r.start))
	b = append(b, " bytes_in="...)
	b = strconv.AppendUint(b, r.bytesIn, 10)
	b = append(b, " bytes_out="...)
	b = strconv.AppendUint(b, r.bytesOut, 10)
	if r.udp {
		b = append(b, " datagrams_in="...)
		b = strconv.AppendUint(b, r.dgramsIn, 10)
		b = append(b, " datagrams_out="...)
		b = strconv.AppendUint(b, r.dgramsOut, 10)
	}
	b = append(b, " cause="...)
	b = append(b, r.cause.String()...)
	b = append(b, " error="...)
	b = strconv.AppendBool(b, r.error)
	return append(b, '\n')
}

func appendConsoleSummary(b []byte, now time.Time, dropped uint64) []byte {
	b = now.UTC().AppendFormat(b, logTimeFormat)
	b = append(b, " WRN "+summaryMessage+" component="+connComponent+" dropped="...)
	b = strconv.AppendUint(b, dropped, 10)
	return append(b, '\n')
}

func appendConsoleField(b []byte, key, value string) []byte {
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, '=')
	return appendConsoleValue(b, value)
}

// appendConsoleValue appends v bare, or quoted when it is empty or holds
// a space, a quote, '=', ',' or anything unprintable, so that key=value
// pairs (and the tries list) split unambiguously.
func appendConsoleValue(b []byte, v string) []byte {
	if v == "" {
		return append(b, `""`...)
	}
	for _, r := range v {
		if r <= ' ' || r == '"' || r == '=' || r == ',' || r == '\\' || r == utf8.RuneError || r == 0x7f {
			return strconv.AppendQuote(b, v)
		}
	}
	return append(b, v...)
}
