package resp

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	big := strings.Repeat("x", MaxLine+1)
	for _, tc := range []struct {
		name, in string
		want     Value
		err      string
	}{
		{name: "simple", in: "+PONG\r\n", want: Value{Kind: SimpleString, Str: "PONG"}},
		{name: "error", in: "-LOADING busy\r\n", want: Value{Kind: Error, Str: "LOADING busy"}},
		{name: "integer", in: ":-42\r\n", want: Value{Kind: Integer, Int: -42}},
		{name: "bulk", in: "$5\r\na\r\nbc\r\n", want: Value{Kind: BulkString, Str: "a\r\nbc"}},
		{name: "empty bulk", in: "$0\r\n\r\n", want: Value{Kind: BulkString}},
		{name: "null bulk", in: "$-1\r\n", want: Value{Kind: Null}},
		{name: "null array", in: "*-1\r\n", want: Value{Kind: Null}},
		{name: "role of a master", in: "*3\r\n$6\r\nmaster\r\n:3129659\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n9001\r\n$7\r\n3129242\r\n",
			want: Value{Kind: Array, Array: []Value{
				{Kind: BulkString, Str: "master"}, {Kind: Integer, Int: 3129659},
				{Kind: Array, Array: []Value{{Kind: Array, Array: []Value{
					{Kind: BulkString, Str: "127.0.0.1"}, {Kind: BulkString, Str: "9001"}, {Kind: BulkString, Str: "3129242"},
				}}}},
			}}},
		{name: "unknown type", in: "HTTP/1.1 400 Bad Request\r\n", err: `reply "HTTP/1.1 400 Bad Request": not a Redis reply`},
		{name: "bare LF", in: "+PONG\n", err: `reply "+PONG": line not ended by CRLF`},
		{name: "empty line", in: "\r\n", err: `reply "": empty line`},
		{name: "bad integer", in: ":4x\r\n", err: `reply ":4x": bad integer`},
		{name: "bad length", in: "$-2\r\n", err: `reply "$-2": bad length`},
		{name: "huge bulk", in: "$999999999\r\n", err: `reply "$999999999": length above 262144`},
		{name: "huge array", in: "*5000\r\n", err: `reply "*5000": length above 4096`},
		{name: "bulk without CRLF", in: "$2\r\nabcd", err: `reply "$2": bulk string not ended by CRLF`},
		{name: "deep nesting", in: "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", err: `reply "*1": arrays nested deeper than 4`},
		{name: "long line", in: big + "\r\n", err: `reply "` + big[:64] + `"...: line longer than 4096 bytes`},
		{name: "cut line", in: "+PON", err: `EOF after partial reply "+PON"`},
		{name: "cut bulk", in: "$10\r\nabc", err: `unexpected EOF after partial reply "abc"`},
		{name: "cut array", in: "*2\r\n:1\r\n", err: `EOF`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewReader(strings.NewReader(tc.in)).Read()
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Read = %+v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Read = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestReadBudget: many bulk strings within the element limit still cannot
// make one reply larger than MaxReply.
func TestReadBudget(t *testing.T) {
	bulk := "$1000\r\n" + strings.Repeat("y", 1000) + "\r\n"
	in := "*300\r\n" + strings.Repeat(bulk, 300)
	_, err := NewReader(strings.NewReader(in)).Read()
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Why != "reply larger than 262144 bytes" {
		t.Fatalf("Read error %v, want the reply size limit", err)
	}
}

// TestReadSequence: the budget is per reply, so a long-lived connection
// reads any number of replies.
func TestReadSequence(t *testing.T) {
	bulk := "$1000\r\n" + strings.Repeat("y", 1000) + "\r\n"
	r := NewReader(strings.NewReader(strings.Repeat(bulk, 1000)))
	for i := range 1000 {
		if v, err := r.Read(); err != nil || len(v.Str) != 1000 {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last reply: %v, want EOF", err)
	}
}

func TestCommand(t *testing.T) {
	if got, want := string(Command("AUTH", "pa ss")), "*2\r\n$4\r\nAUTH\r\n$5\r\npa ss\r\n"; got != want {
		t.Fatalf("Command = %q, want %q", got, want)
	}
	v, err := NewReader(strings.NewReader(string(Command("SENTINEL", "get-master-addr-by-name", "m")))).Read()
	if err != nil || v.String() != "[SENTINEL get-master-addr-by-name m]" {
		t.Fatalf("Command reads back as %v, %v", v, err)
	}
}

// FuzzRead: any input gives a value or an error, never a panic, and never
// more than MaxReply bytes of strings.
func FuzzRead(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "*2\r\n$1\r\na\r\n*1\r\n:2\r\n", "$-1\r\n", "*-1\r\n",
		"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:3167038\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(strings.NewReader(string(data)))
		for range 8 {
			v, err := r.Read()
			if err != nil {
				var re *ReadError
				var fe *FormatError
				if !errors.As(err, &re) && !errors.As(err, &fe) {
					t.Fatalf("error %T %v is neither a ReadError nor a FormatError", err, err)
				}
				return
			}
			if n := size(v); n > MaxReply {
				t.Fatalf("a reply of %d bytes passed the %d limit", n, MaxReply)
			}
		}
	})
}

func size(v Value) int {
	n := len(v.Str)
	for _, e := range v.Array {
		n += size(e)
	}
	return n
}
