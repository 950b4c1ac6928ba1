package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Kind is the type of a reply.
type Kind byte

// The RESP2 reply kinds, by their type byte. A null bulk string ($-1) and
// a null array (*-1) are both Null.
const (
	SimpleString Kind = '+'
	Error        Kind = '-'
	Integer      Kind = ':'
	BulkString   Kind = '$'
	Array        Kind = '*'
	Null         Kind = '_'
)

// Value is one reply. Str holds a simple string, an error's text (without
// the '-') or a bulk string; Int an integer; Array the elements of an array.
type Value struct {
	Kind  Kind
	Str   string
	Int   int64
	Array []Value
}

// String renders v for messages: strings as they are, arrays in brackets.
func (v Value) String() string {
	switch v.Kind {
	case Integer:
		return strconv.FormatInt(v.Int, 10)
	case Null:
		return "(nil)"
	case Array:
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range v.Array {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(e.String())
		}
		b.WriteByte(']')
		return b.String()
	case Error:
		return "-" + v.Str
	}
	return v.Str
}

// Limits of one reply. A Redis health or Sentinel reply is small: an INFO
// section or a list of a few replicas.
const (
	// MaxLine bounds a line: a simple string, an error, a length.
	MaxLine = 4096
	// MaxReply bounds the bytes of one whole reply.
	MaxReply = 256 << 10
	// MaxElements bounds the elements of one array.
	MaxElements = 4096
	// MaxDepth bounds the nesting of arrays.
	MaxDepth = 4
)

// ReadError is a failure of the connection under a Reader. Partial holds
// the start of a line cut short by it, if any.
type ReadError struct {
	Err     error
	Partial []byte
}

// Error returns the connection's error, followed by the partial reply
// when there is one.
func (e *ReadError) Error() string {
	if len(e.Partial) > 0 {
		return fmt.Sprintf("%v after partial reply %s", e.Err, Quote(e.Partial))
	}
	return e.Err.Error()
}

// Unwrap returns the connection's error.
func (e *ReadError) Unwrap() error { return e.Err }

// FormatError is a reply that breaks RESP or a limit: Line is the line at
// fault, Why what is wrong with it.
type FormatError struct {
	Line []byte
	Why  string
}

// Error names the line at fault, quoted, and what is wrong with it.
func (e *FormatError) Error() string { return fmt.Sprintf("reply %s: %s", Quote(e.Line), e.Why) }

// Reader reads replies from a connection. It is not safe for concurrent
// use.
type Reader struct {
	r      *bufio.Reader
	budget int // bytes the current reply may still take
}

// NewReader reads replies from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, MaxLine)}
}

// Read reads one whole reply. An error reply is returned as a Value of
// kind Error, not as an error: errors are for a broken connection
// (*ReadError) or a malformed reply (*FormatError).
func (r *Reader) Read() (Value, error) {
	r.budget = MaxReply
	return r.read(0)
}

func (r *Reader) read(depth int) (Value, error) {
	line, err := r.line()
	if err != nil {
		return Value{}, err
	}
	if len(line) == 0 {
		return Value{}, &FormatError{Line: line, Why: "empty line"}
	}
	switch Kind(line[0]) {
	case SimpleString, Error:
		return Value{Kind: Kind(line[0]), Str: string(line[1:])}, nil
	case Integer:
		n, err := strconv.ParseInt(string(line[1:]), 10, 64)
		if err != nil {
			return Value{}, &FormatError{Line: line, Why: "bad integer"}
		}
		return Value{Kind: Integer, Int: n}, nil
	case BulkString:
		n, err := r.length(line, MaxReply)
		if err != nil || n < 0 {
			return Value{Kind: Null}, err
		}
		if n+2 > r.budget {
			return Value{}, &FormatError{Line: line, Why: fmt.Sprintf("reply larger than %d bytes", MaxReply)}
		}
		r.budget -= n + 2
		buf := make([]byte, n+2)
		if got, err := io.ReadFull(r.r, buf); err != nil {
			return Value{}, &ReadError{Err: err, Partial: buf[:got]}
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return Value{}, &FormatError{Line: line, Why: "bulk string not ended by CRLF"}
		}
		return Value{Kind: BulkString, Str: string(buf[:n])}, nil
	case Array:
		n, err := r.length(line, MaxElements)
		if err != nil || n < 0 {
			return Value{Kind: Null}, err
		}
		if depth+1 > MaxDepth {
			return Value{}, &FormatError{Line: line, Why: fmt.Sprintf("arrays nested deeper than %d", MaxDepth)}
		}
		v := Value{Kind: Array, Array: make([]Value, 0, min(n, 64))}
		for range n {
			e, err := r.read(depth + 1)
			if err != nil {
				return Value{}, err
			}
			v.Array = append(v.Array, e)
		}
		return v, nil
	}
	return Value{}, &FormatError{Line: line, Why: "not a Redis reply"}
}

// length parses the length of a bulk string or array: -1 (null) up to max.
func (r *Reader) length(line []byte, max int) (int, error) {
	n, err := strconv.Atoi(string(line[1:]))
	switch {
	case err != nil || n < -1:
		return 0, &FormatError{Line: line, Why: "bad length"}
	case n > max:
		return 0, &FormatError{Line: line, Why: fmt.Sprintf("length above %d", max)}
	}
	return n, nil
}

// line reads one CRLF-terminated line, without the CRLF, charged to the
// budget.
func (r *Reader) line() ([]byte, error) {
	line, err := r.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, &FormatError{Line: line, Why: fmt.Sprintf("line longer than %d bytes", MaxLine)}
	}
	if err != nil {
		return nil, &ReadError{Err: err, Partial: bytes.Clone(line)}
	}
	if r.budget -= len(line); r.budget < 0 {
		return nil, &FormatError{Line: line, Why: fmt.Sprintf("reply larger than %d bytes", MaxReply)}
	}
	line = line[:len(line)-1]
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return nil, &FormatError{Line: line, Why: "line not ended by CRLF"}
	}
	return line[:len(line)-1], nil
}

// Command encodes args as a RESP array of bulk strings, the form of every
// command.
func Command(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

// Quote renders bytes from a server for a message, cut to a readable
// length.
func Quote(b []byte) string {
	const maxQuoted = 64
	if len(b) > maxQuoted {
		return strconv.Quote(string(b[:maxQuoted])) + "..."
	}
	return strconv.Quote(string(b))
}
