package resp

import (
	"errors"
	"strings"
	"testing"
)

// TestReadBudgetOfLines: a reply of many short lines, each within MaxLine
// and the array within MaxElements, still cannot pass MaxReply in all.
func TestReadBudgetOfLines(t *testing.T) {
	line := "+" + strings.Repeat("x", 69) + "\r\n"
	in := "*4096\r\n" + strings.Repeat(line, 4096)
	_, err := NewReader(strings.NewReader(in)).Read()
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Why != "reply larger than 262144 bytes" || string(fe.Line) != line {
		t.Fatalf("Read error %v, want the reply size limit at a line", err)
	}
}

// TestValueString: integers and nulls render as redis-cli shows them, for
// the messages that quote a reply.
func TestValueString(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{Value{Kind: Integer, Int: -42}, "-42"},
		{Value{Kind: Null}, "(nil)"},
		{Value{Kind: Array, Array: []Value{{Kind: BulkString, Str: "a"}, {Kind: Integer, Int: 1}, {Kind: Null}}}, "[a 1 (nil)]"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.v, got, tc.want)
		}
	}
}
