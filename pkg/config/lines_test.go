package config

import (
	"reflect"
	"testing"
)

func TestIndexLines(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want map[string]int
	}{
		{
			name: "tables and arrays of tables",
			toml: `[global]
workers = 2

[[frontend]]
name = "a"
  [frontend.health]
  rise = 2
  [[frontend.backend]]
  address = "x"
  [[frontend.backend]]
  weight = 3

[[frontend]]
  [[frontend.backend]]
  weight = 4
`,
			want: map[string]int{
				"global": 1, "global.workers": 2,
				"frontend[0]": 4, "frontend[0].name": 5,
				"frontend[0].health": 6, "frontend[0].health.rise": 7,
				"frontend[0].backend[0]": 8, "frontend[0].backend[0].address": 9,
				"frontend[0].backend[1]": 10, "frontend[0].backend[1].weight": 11,
				"frontend[1]":            13,
				"frontend[1].backend[0]": 14, "frontend[1].backend[0].weight": 15,
			},
		},
		{
			name: "values spanning lines",
			toml: `a = [
  "x", # a comment with ] and "
  "y",
]
b = """
one
two \
three"""
c = '''
[not.a.table]
'''
d = { e = 1, f = [2, 3] }
g = "# not a comment [x]" # but this is
h = 'C:\path' # literal strings have no escapes
i = "quote \" inside"
j = """a""""
k = 1
`,
			want: map[string]int{"a": 1, "b": 5, "c": 9, "d": 12, "g": 13, "h": 14, "i": 15, "j": 16, "k": 17},
		},
		{
			name: "quoted and dotted keys",
			toml: "[ \"frontend\" ]\n\"my key\" = 1\nhealth . check = \"tcp\"\n'lit.eral' = 2\n[[ 'frontend' . backend ]]\nweight = 1\n",
			want: map[string]int{
				"frontend": 1, `frontend."my key"`: 2, "frontend.health.check": 3, `frontend."lit.eral"`: 4,
				"frontend.backend[0]": 5, "frontend.backend[0].weight": 6,
			},
		},
		{
			name: "CRLF line endings",
			toml: "[global]\r\nworkers = 1\r\n\r\n[log]\r\nlevel = \"info\"\r\n",
			want: map[string]int{"global": 1, "global.workers": 2, "log": 4, "log.level": 5},
		},
		{
			name: "malformed lines are skipped",
			toml: "[[frontend\nname = 1\n= 2\n\"open = 3\n[x]]\ny = 'unterminated\nz = 4\n",
			// "[x]]" reads as [x] followed by junk.
			want: map[string]int{"name": 2, "x": 5, "x.y": 6, "x.z": 7},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := indexLines(tc.toml).lines
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("lines:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestLineOfFallsBackToEnclosingTable(t *testing.T) {
	idx := indexLines("[[frontend]]\nname = \"a\"\n[[frontend]]\nname = \"b\"\n  [[frontend.backend]]\n  address = \"x\"\n")
	tests := []struct {
		path string
		want int
	}{
		{"frontend[1].backend[0].address", 6},
		{"frontend[1].backend[0].weight", 5},
		{"frontend[1].backend[3].weight", 3},
		{"frontend[1].health.rise", 3},
		{"frontend[0].listen", 1},
		{"frontend[2].name", 0},
		{"global.workers", 0},
		{"", 0},
	}
	for _, tc := range tests {
		if got := idx.lineOf(tc.path); got != tc.want {
			t.Errorf("lineOf(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
	var none *lineIndex
	if got := none.lineOf("frontend[0]"); got != 0 {
		t.Errorf("nil index lineOf = %d, want 0", got)
	}
}
