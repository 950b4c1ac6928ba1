package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/BurntSushi/toml"
)

// Load reads and parses the config file at path. An unreadable file yields
// an error wrapping the os error (errors.Is(err, fs.ErrNotExist) works); an
// invalid one yields an *Error listing every problem with path:line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(data, path)
}

// LoadIn is Load that also warns, in Config.Warnings, of what the config
// asks and env does not allow (see Environment): the daemon and `splicer
// check` load the config this way, Load is for tools that only read it.
func LoadIn(path string, env Environment) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return parse(data, path, &env)
}

// Parse decodes a TOML config strictly (unknown keys are errors), fills in
// defaults and validates the result. filename is used in problem reports and
// as Config.File. On failure the error is an *Error listing every problem.
func Parse(data []byte, filename string) (*Config, error) {
	return parse(data, filename, nil)
}

// parse is Parse, with the warnings of env when it is not nil.
func parse(data []byte, filename string, env *Environment) (*Config, error) {
	text := string(data)
	var raw rawConfig
	md, err := toml.Decode(text, &raw)
	ps := &problems{file: filename}
	var syntax toml.ParseError
	if errors.As(err, &syntax) {
		ps.addAt(syntax.Position.Line, "", syntax.Message)
		return nil, ps.err()
	}
	ps.lines = indexLines(text)
	unknownKeys(md, ps)
	if err != nil {
		// Every value is a setting that cannot fail to decode, so what is
		// left is a table where a value is (or the reverse).
		shapeProblems(md, ps, err)
		return nil, ps.err()
	}
	cfg := resolve(&raw, ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	cfg.File = filename
	if env != nil {
		warnEnvironment(cfg, *env, ps)
	}
	cfg.Warnings = ps.sortedWarnings()
	return cfg, nil
}

// shapeProblems reports tables and arrays of tables given as something
// else, such as [frontend] for [[frontend]]. The decoder stops at the first
// one with a message naming Go types, which is reported as is only when no
// culprit is found.
func shapeProblems(md toml.MetaData, ps *problems, decodeErr error) {
	before := len(ps.list)
	checked := make(map[string]bool)
	for _, key := range md.Keys() {
		// A table can exist only implicitly, as the parent of a header
		// ([[frontend.backend]] alone makes frontend a table), so every
		// prefix of every key is checked.
		for n := 1; n <= len(key); n++ {
			table := key[:n]
			if checked[table.String()] {
				continue
			}
			checked[table.String()] = true
			if msg, ok := shapeMismatch(md, table); ok {
				addAtKey(ps, table, key, msg)
			}
		}
	}
	if len(ps.list) == before {
		ps.addAt(0, "", decodeErr.Error())
	}
}

// shapeMismatch says what is wrong when key should be a table or an array
// of tables and is something else.
func shapeMismatch(md toml.MetaData, key toml.Key) (string, bool) {
	want, ok := tableShape(key)
	if !ok {
		return "", false
	}
	got := md.Type(key...)
	if got == "" {
		got = "Hash" // defined implicitly, by a header or a dotted key below it
	}
	if got == want || want == "ArrayHash" && got == "Array" {
		return "", false
	}
	header := "[" + key.String() + "]"
	if want == "ArrayHash" {
		header = "[" + header + "]"
	}
	return fmt.Sprintf("must be %s (%s), got %s", shapeNames[want], header, shapeNames[got]), true
}

// addAtKey reports a problem with key on each line it occurs; a key that is
// only implied is reported on the first line of the key implying it.
func addAtKey(ps *problems, key, implier toml.Key, msg string) {
	places := ps.lines.places(key.String())
	for _, p := range places {
		ps.addAt(p.line, p.path, msg)
	}
	if len(places) > 0 {
		return
	}
	line := 0
	if places := ps.lines.places(implier.String()); len(places) > 0 {
		line = places[0].line
	}
	ps.addAt(line, key.String(), msg)
}

// shapeNames spells the TOML types MetaData.Type returns.
var shapeNames = map[string]string{
	"Integer":   "an integer",
	"Float":     "a float",
	"Datetime":  "a date-time",
	"String":    "a string",
	"Bool":      "a boolean",
	"Array":     "an array",
	"Hash":      "a table",
	"ArrayHash": "an array of tables",
}

// tableShape returns the TOML type the schema wants for key when key names
// a table ("Hash") or an array of tables ("ArrayHash").
func tableShape(key toml.Key) (string, bool) {
	t, at, _ := schemaLookup(key)
	switch {
	case at >= 0 || t == nil || tableType(t) == nil:
		return "", false
	case t.Kind() == reflect.Slice:
		return "ArrayHash", true
	}
	return "Hash", true
}
