package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// lineIndex maps the indexed path of every table header and key of a TOML
// text to its line: "frontend[0].backend[2]" is the third
// [[frontend.backend]] header under the first [[frontend]], and
// "frontend[0].backend[2].weight" the weight key below it.
//
// The TOML decoder records positions only by unindexed key, which cannot
// tell the third backend from the first, hence this small scanner. It runs
// on text the decoder has accepted, but must not panic on any input. Keys it
// cannot place (inside inline tables) are simply absent; lineOf then falls
// back to the nearest enclosing table it knows.
type lineIndex struct {
	lines map[string]int // indexed path -> line
	// byKey maps an unindexed key, spelled as toml.Key.String spells it, to
	// every place it occurs, in file order.
	byKey map[string][]keyPlace
}

// keyPlace is one occurrence of a key: its indexed path, that of the table
// holding it, and its line.
type keyPlace struct {
	path, parent string
	line         int
}

// lineOf returns the line of the setting at an indexed path, or of its
// nearest enclosing table or array element that has one; 0 when none does.
func (x *lineIndex) lineOf(path string) int {
	if x == nil {
		return 0
	}
	for path != "" {
		if line, ok := x.lines[path]; ok {
			return line
		}
		// Every step strictly shortens path, which bounds the loop.
		path = path[:max(strings.LastIndexAny(path, ".["), 0)]
	}
	return 0
}

// pathSeg is one step of an indexed path; index is -1 unless the step is an
// element of an array of tables.
type pathSeg struct {
	name  string
	index int
}

// formatPath spells an indexed path: frontend[0].backend[2].weight.
func formatPath(path []pathSeg) string {
	var b strings.Builder
	for i, seg := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(toml.Key{seg.name}.String())
		if seg.index >= 0 {
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
		}
	}
	return b.String()
}

// indexLines scans a TOML text for headers and keys.
func indexLines(src string) *lineIndex {
	s := &lineScanner{
		src:    src,
		line:   1,
		counts: make(map[string]int),
		index:  &lineIndex{lines: make(map[string]int), byKey: make(map[string][]keyPlace)},
	}
	s.scan()
	return s.index
}

// lineScanner walks a TOML text once. Invariant: line is the 1-based line of
// src[pos], and every newline that pos moves past is counted.
type lineScanner struct {
	src  string
	pos  int
	line int
	// table is the indexed path of the table the following keys belong to.
	table []pathSeg
	// counts holds, per array of tables (indexed path of its parent plus
	// its name, e.g. "frontend[0].backend"), how many elements were seen.
	counts map[string]int
	index  *lineIndex
}

// scan reads one statement (header or key/value) per round; each round
// consumes at least one byte, which bounds the loop by len(src).
func (s *lineScanner) scan() {
	for {
		s.skipBlank()
		if s.pos >= len(s.src) {
			return
		}
		if s.src[s.pos] == '[' {
			s.header()
		} else {
			s.keyValue()
		}
	}
}

// header reads [table] or [[array.of.tables]] and makes it current.
func (s *lineScanner) header() {
	array := strings.HasPrefix(s.src[s.pos:], "[[")
	closing := "]"
	s.pos++
	if array {
		closing = "]]"
		s.pos++
	}
	names, ok := s.key()
	s.skipSpaces()
	if !ok || !strings.HasPrefix(s.src[s.pos:], closing) {
		s.skipLine()
		return
	}
	s.pos += len(closing)
	path := make([]pathSeg, 0, len(names))
	for i, name := range names {
		path = append(path, pathSeg{name: name, index: -1})
		id := formatPath(path)
		if array && i == len(names)-1 {
			s.counts[id]++
		}
		if n := s.counts[id]; n > 0 {
			path[i].index = n - 1
		}
	}
	s.table = path
	s.record(path, names)
	s.skipLine() // a trailing comment
}

// keyValue reads `key = value` (key possibly dotted) in the current table.
func (s *lineScanner) keyValue() {
	line := s.line
	names, ok := s.key()
	s.skipSpaces()
	if !ok || s.pos >= len(s.src) || s.src[s.pos] != '=' {
		s.skipLine()
		return
	}
	s.pos++
	path := append([]pathSeg(nil), s.table...)
	tableNames := make([]string, len(s.table))
	for i, seg := range s.table {
		tableNames[i] = seg.name
	}
	for _, name := range names {
		path = append(path, pathSeg{name: name, index: -1})
	}
	s.recordAt(line, path, append(tableNames, names...))
	s.skipValue()
}

func (s *lineScanner) record(path []pathSeg, names []string) {
	s.recordAt(s.line, path, names)
}

// recordAt keeps the first line of a path; a repeated key is a TOML error
// the decoder reports itself.
func (s *lineScanner) recordAt(line int, path []pathSeg, names []string) {
	id := formatPath(path)
	if _, dup := s.index.lines[id]; dup {
		return
	}
	s.index.lines[id] = line
	key := toml.Key(names).String()
	place := keyPlace{path: id, parent: formatPath(path[:len(path)-1]), line: line}
	s.index.byKey[key] = append(s.index.byKey[key], place)
}

// key reads a possibly dotted key of bare and quoted parts.
func (s *lineScanner) key() ([]string, bool) {
	var names []string
	for {
		s.skipSpaces()
		name, ok := s.keyPart()
		if !ok {
			return nil, false
		}
		names = append(names, name)
		s.skipSpaces()
		if s.pos >= len(s.src) || s.src[s.pos] != '.' {
			return names, true
		}
		s.pos++
	}
}

// keyPart reads one bare or quoted part of a key.
func (s *lineScanner) keyPart() (string, bool) {
	start := s.pos
	if s.pos < len(s.src) && (s.src[s.pos] == '"' || s.src[s.pos] == '\'') {
		quote := s.src[s.pos]
		end := strings.IndexAny(s.src[s.pos+1:], string(quote)+"\n")
		if end < 0 || s.src[s.pos+1+end] != quote {
			return "", false
		}
		s.pos += end + 2
		raw := s.src[start:s.pos]
		if quote == '"' {
			// TOML's basic-string escapes are close enough to Go's; a key
			// that does not unquote is only left out of the index.
			name, err := strconv.Unquote(raw)
			return name, err == nil
		}
		return raw[1 : len(raw)-1], true
	}
	for s.pos < len(s.src) && isBareKeyByte(s.src[s.pos]) {
		s.pos++
	}
	return s.src[start:s.pos], s.pos > start
}

func isBareKeyByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// skipValue moves past a value, which may span lines inside brackets or
// multi-line strings, and stops at the newline that ends it.
func (s *lineScanner) skipValue() {
	depth := 0
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; c {
		case '"', '\'':
			s.skipString()
		case '[', '{':
			depth++
			s.pos++
		case ']', '}':
			depth = max(depth-1, 0)
			s.pos++
		case '#':
			s.skipLine()
		case '\n':
			if depth == 0 {
				return
			}
			s.line++
			s.pos++
		default:
			s.pos++
		}
	}
}

// skipString moves past a basic or literal string, single- or multi-line,
// starting at its opening quote. An unterminated single-line string stops
// at the newline.
func (s *lineScanner) skipString() {
	quote := s.src[s.pos]
	triple := strings.Repeat(string(quote), 3)
	if !strings.HasPrefix(s.src[s.pos:], triple) {
		s.pos++
		for s.pos < len(s.src) && s.src[s.pos] != '\n' {
			c := s.src[s.pos]
			s.pos++
			if c == quote {
				return
			}
			if c == '\\' && quote == '"' && s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		}
		return
	}
	s.pos += len(triple)
	for s.pos < len(s.src) {
		if strings.HasPrefix(s.src[s.pos:], triple) {
			s.pos += len(triple)
			// Up to two more quotes belong to the content: """a"""" is `a"`.
			for extra := 0; extra < 2 && s.pos < len(s.src) && s.src[s.pos] == quote; extra++ {
				s.pos++
			}
			return
		}
		c := s.src[s.pos]
		s.pos++
		switch {
		case c == '\n':
			s.line++
		case c == '\\' && quote == '"' && s.pos < len(s.src):
			if s.src[s.pos] == '\n' {
				s.line++
			}
			s.pos++
		}
	}
}

// skipBlank moves past spaces, newlines and comments.
func (s *lineScanner) skipBlank() {
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case ' ', '\t', '\r':
			s.pos++
		case '\n':
			s.line++
			s.pos++
		case '#':
			s.skipLine()
		default:
			return
		}
	}
}

// skipSpaces moves past spaces and tabs within a line.
func (s *lineScanner) skipSpaces() {
	for s.pos < len(s.src) && (s.src[s.pos] == ' ' || s.src[s.pos] == '\t') {
		s.pos++
	}
}

// skipLine moves to the newline ending the current line, leaving it to be
// counted by the caller.
func (s *lineScanner) skipLine() {
	if i := strings.IndexByte(s.src[s.pos:], '\n'); i >= 0 {
		s.pos += i
		return
	}
	s.pos = len(s.src)
}

// places returns where the unindexed key occurs, in file order.
func (x *lineIndex) places(key string) []keyPlace {
	if x == nil {
		return nil
	}
	return x.byKey[key]
}
