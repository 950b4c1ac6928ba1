package config

import (
	"os"

	"github.com/BurntSushi/toml"
)

// PeekLogFormat returns the [log] format the file at path asks for, read on
// its own and leniently, or "" when the file cannot be read, is not TOML,
// or names no valid format. The daemon uses it to report the problems of a
// config that does not load in the form the operator asked for.
func PeekLogFormat(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var peek struct {
		Log struct {
			Format any `toml:"format"`
		} `toml:"log"`
	}
	if _, err := toml.Decode(string(data), &peek); err != nil {
		return ""
	}
	switch f, _ := peek.Log.Format.(string); f {
	case "json", "console":
		return f
	}
	return ""
}
