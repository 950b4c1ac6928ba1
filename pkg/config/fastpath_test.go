package config

import (
	"strings"
	"testing"
)

// splicer has no kernel fast path (docs/architecture.md, "No kernel fast
// path"): global.fast_path, the key issue #22 proposed for it, is refused
// like any unknown key, never accepted and ignored.
func TestNoFastPathKey(t *testing.T) {
	_, err := Parse([]byte("[global]\nfast_path = \"sockmap\"\n"+demoFrontend), "config.toml")
	if err == nil || !strings.Contains(err.Error(), `config.toml:2: global: unknown key "fast_path"`) {
		t.Fatalf("Parse: %v, want global.fast_path refused as an unknown key", err)
	}
}
