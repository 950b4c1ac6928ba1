package config

import (
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{in: "4096B", want: 4096},
		{in: "64KB", want: 64000},
		{in: "64KiB", want: 65536},
		{in: "1 MiB", want: 1 << 20},
		{in: "2MB", want: 2_000_000},
		{in: "1GiB", want: 1 << 30},
		{in: "3GB", want: 3_000_000_000},
		{in: "0B", want: 0},
		{in: "64kb", wantErr: `invalid size "64kb"; write a number of bytes, or a number with a unit: B, KB, MB, GB, KiB, MiB, GiB`},
		{in: "4096", wantErr: `invalid size "4096"; write a number of bytes, or a number with a unit: B, KB, MB, GB, KiB, MiB, GiB`},
		{in: "KiB", wantErr: `invalid size "KiB"; write a number of bytes, or a number with a unit: B, KB, MB, GB, KiB, MiB, GiB`},
		{in: "1.5MiB", wantErr: `invalid size "1.5MiB"; write a number of bytes, or a number with a unit: B, KB, MB, GB, KiB, MiB, GiB`},
		{in: "-1KiB", wantErr: `invalid size "-1KiB"; write a number of bytes, or a number with a unit: B, KB, MB, GB, KiB, MiB, GiB`},
		{in: "9999999999999GiB", wantErr: `size "9999999999999GiB" is too large`},
		{in: "99999999999999999999B", wantErr: `size "99999999999999999999B" is too large`},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		switch {
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("parseSize(%q) error %v, want %q", tc.in, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int
		want string
	}{
		{0, "0B"}, {1000, "1000B"}, {4096, "4KiB"}, {1 << 20, "1MiB"}, {3 << 30, "3GiB"}, {1536 << 10, "1536KiB"}, {-1, "-1B"},
	}
	for _, tc := range tests {
		if got := formatSize(tc.in); got != tc.want {
			t.Errorf("formatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSettingTypeErrors(t *testing.T) {
	tests := []struct {
		name string
		got  error
		want string
	}{
		{"int from float", (&intSetting{}).decode(1.5), "must be an integer, got a float"},
		{"bool from string", (&boolSetting{}).decode("yes"), "must be true or false, got a string"},
		{"string from array", (&stringSetting{}).decode([]any{"a"}), "must be a string, got an array"},
		{"duration from table", (&durationSetting{}).decode(map[string]any{}), `must be a duration string such as "500ms" or "2s", got a table`},
		{"size from boolean", (&sizeSetting{}).decode(true), `must be a number of bytes or a string such as "64KiB", got a boolean`},
		{"list with a number", (&listSetting{}).decode([]any{"a", int64(1)}), "must be a string or an array of strings, got an integer in the array"},
	}
	for _, tc := range tests {
		if tc.got == nil || tc.got.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// decode runs UnmarshalTOML and returns the error the setting kept.
func (s *setting[T, P]) decode(data any) error {
	if err := s.UnmarshalTOML(data); err != nil {
		return err
	}
	return s.err
}

func TestClosestKey(t *testing.T) {
	known := []string{"name", "address", "weight", "max_connections", "backup"}
	tests := []struct{ in, want string }{
		{"wieght", "weight"},
		{"adress", "address"},
		{"Weight", "weight"},
		{"BACKUP", "backup"},
		{"nme", "name"},
		{"max_connection", "max_connections"},
		{"port", ""},
		{"x", ""},
	}
	for _, tc := range tests {
		if got := closest(tc.in, known); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
