package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSystemdUnitShowsCredentials checks that the shipped unit shows both
// ways to hand splicer a secret, commented (the files they name do not
// exist until the operator makes them): LoadCredential= and
// LoadCredentialEncrypted=, each as docs/security.md's example writes it.
// Uncommented, systemd parses every one of them without a complaint and
// the unit keeps its exposure score.
func TestSystemdUnitShowsCredentials(t *testing.T) {
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`(?m)^#(LoadCredential(?:Encrypted)?=[a-z-]+:/\S+)$`).FindAllStringSubmatch(string(unit), -1)
	seen := map[string]int{}
	for _, m := range lines {
		key, _, _ := strings.Cut(m[1], "=")
		seen[key]++
		if !strings.Contains(string(doc), "\n"+m[1]+"\n") {
			t.Errorf("the unit's %q is not in docs/security.md's example", m[1])
		}
	}
	if seen["LoadCredential"] == 0 || seen["LoadCredentialEncrypted"] == 0 {
		t.Fatalf("the unit shows %v; want at least one commented LoadCredential= and LoadCredentialEncrypted= each", seen)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: install Debian's systemd package (apt-get install systemd) to parse the credential lines")
	}
	uncommented := regexp.MustCompile(`(?m)^#(LoadCredential)`).ReplaceAll(unit, []byte("$1"))
	path := filepath.Join(t.TempDir(), "splicer.service")
	if err := os.WriteFile(path, uncommented, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze: %v\n%s", err, out)
	}
	if regexp.MustCompile(`(?i)unknown key|ignoring|failed to parse`).Match(out) {
		t.Errorf("systemd does not take the credential lines:\n%s", out)
	}
	if !regexp.MustCompile(`Overall exposure level for splicer.service: (0\.\d|1\.\d|2\.0) `).Match(out) {
		t.Errorf("with the credentials the unit scores worse than 2.0:\n%s", out)
	}
}
