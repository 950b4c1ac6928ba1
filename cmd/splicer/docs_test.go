package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The shell examples of README.md and docs/*.md that are marked runnable
// run here against this binary, so the docs cannot drift from it. A mark
// is an HTML comment on the line before the block's fence, which renders
// as nothing:
//
//	<!-- runnable -->              the next ```sh block runs
//	<!-- runnable: demo -->        ... with `splicer run -c config.toml.example
//	                               -demo` serving meanwhile
//	<!-- runnable: needs TOOL -->  ... when TOOL is installed, a command on
//	                               PATH or a file (skipped, and logged,
//	                               without it)
//	<!-- runnable: file NAME -->   the next block (any language) is written
//	                               to NAME for the blocks after it
//
// A block whose lines start with "$ " is a transcript: each such line is a
// command, and the lines up to the next one are its expected output, which
// must appear in order among the lines it prints ("..." stands for any
// text, and a line of "..." alone for any number of lines). Any other
// block is a script. Either must exit 0 (a transcript: each command).
//
// The blocks of one document run in order, in one working directory
// holding config.toml.example, with `splicer` on PATH, in a network
// namespace of their own: the example's fixed ports (7000, 9090) cannot
// meet another test's.

// docBlock is one marked block of a document.
type docBlock struct {
	file, mark, lang string
	line             int // of the opening fence
	text             []string
}

var runnableMark = regexp.MustCompile(`^<!-- runnable(?::\s*(.*?))?\s*-->$`)

// docBlocks returns the marked blocks of the Markdown file at path.
func docBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docBlock
	var cur *docBlock
	mark, marked := "", false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text = append(cur.text, line)
		case marked && strings.HasPrefix(line, "```"):
			cur = &docBlock{file: path, mark: mark, lang: strings.TrimPrefix(line, "```"), line: n}
			marked = false
		case marked:
			t.Fatalf("%s:%d: a runnable mark must be followed by a code block", path, n-1)
		default:
			if m := runnableMark.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
				mark, marked = m[1], true
			}
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed code block", path, cur.line)
	}
	return out
}

// TestDocExamples runs every runnable block of README.md and docs/*.md.
func TestDocExamples(t *testing.T) {
	if os.Geteuid() != 0 || exec.Command("unshare", "--net", "true").Run() != nil {
		t.Skip("the doc examples run in a network namespace of their own: run as root, with unshare (util-linux) and ip (iproute2)")
	}
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", asMainEnv, testBinary(t))
	if err := os.WriteFile(filepath.Join(bin, "splicer"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "config.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, doc := range append([]string{filepath.Join(root, "README.md")}, docs...) {
		blocks := docBlocks(t, doc)
		if len(blocks) == 0 {
			continue
		}
		total += len(blocks)
		name := strings.TrimPrefix(doc, root+string(filepath.Separator))
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			if err := os.WriteFile(filepath.Join(work, "config.toml.example"), example, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, b := range blocks {
				runDocBlock(t, b, work, bin)
			}
		})
	}
	if total < 8 {
		t.Errorf("only %d runnable blocks found: the marks are gone?", total)
	}
}

// runDocBlock runs one block in work, with bin first on PATH.
func runDocBlock(t *testing.T, b docBlock, work, bin string) {
	t.Helper()
	where := fmt.Sprintf("%s:%d", b.file, b.line)
	fields := strings.Fields(b.mark)
	switch {
	case len(fields) == 2 && fields[0] == "file":
		text := strings.Join(b.text, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(work, fields[1]), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	case len(fields) == 2 && fields[0] == "needs":
		_, err := exec.LookPath(fields[1])
		if strings.Contains(fields[1], "/") {
			_, err = os.Stat(fields[1])
		}
		if err != nil {
			t.Logf("%s: skipped: %s is not installed", where, fields[1])
			return
		}
	case b.mark != "" && b.mark != "demo":
		t.Fatalf("%s: unknown mark %q", where, b.mark)
	}
	if b.lang != "sh" {
		t.Fatalf("%s: a runnable block must be ```sh, not %q", where, b.lang)
	}
	transcript := len(b.text) > 0 && strings.HasPrefix(b.text[0], "$ ")
	var script strings.Builder
	script.WriteString("set -e\nip link set lo up\n")
	if b.mark == "demo" {
		script.WriteString(`splicer run -c config.toml.example -demo >demo.log 2>&1 &
demo=$!
# A second SIGTERM closes what the block left open instead of waiting.
trap 'kill $demo 2>/dev/null; (sleep 0.5; kill $demo 2>/dev/null) & wait $demo' EXIT
i=0; until splicer stats >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || { cat demo.log; exit 1; }; sleep 0.1; done
`)
	}
	type command struct {
		cmd  string
		want []string
	}
	var cmds []command
	if transcript {
		for _, l := range b.text {
			if c, ok := strings.CutPrefix(l, "$ "); ok {
				cmds = append(cmds, command{cmd: c})
			} else if len(cmds) > 0 {
				cmds[len(cmds)-1].want = append(cmds[len(cmds)-1].want, l)
			}
		}
		for i, c := range cmds {
			// Each command's output and status, kept for the comparison;
			// the shell goes on so that the demo is stopped either way.
			fmt.Fprintf(&script, "set +e\n{ %s\n} >out.%d 2>&1\necho $? >rc.%d\nset -e\n", c.cmd, i, i)
		}
	} else {
		script.WriteString(strings.Join(b.text, "\n") + "\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "bash", "-c", script.String())
	// A process group of its own: a block that hangs is killed with the
	// demo daemon it started, and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "HOME="+work, "SPLICER_ADMIN=", "SPLICER_TOKEN_FILE=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: %v\n%s\nscript:\n%s", where, err, out, script.String())
		return
	}
	for i, c := range cmds {
		got, _ := os.ReadFile(filepath.Join(work, "out."+strconv.Itoa(i)))
		rc, _ := os.ReadFile(filepath.Join(work, "rc."+strconv.Itoa(i)))
		if strings.TrimSpace(string(rc)) != "0" {
			t.Errorf("%s: `%s` exited %s:\n%s", where, c.cmd, strings.TrimSpace(string(rc)), got)
			continue
		}
		if msg := matchTranscript(c.want, strings.Split(strings.TrimRight(string(got), "\n"), "\n")); msg != "" {
			t.Errorf("%s: `%s`: %s\ngot:\n%s", where, c.cmd, msg, got)
		}
	}
}

// matchTranscript checks that want's lines appear in order among got's;
// "..." in a line matches any text, a line "..." any number of lines.
// It returns what did not match, or "".
func matchTranscript(want, got []string) string {
	j := 0
	for _, w := range want {
		w = strings.TrimRight(w, " ")
		if w == "..." || w == "" {
			continue
		}
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(w), regexp.QuoteMeta("..."), ".*") + "$")
		for j < len(got) && !re.MatchString(strings.TrimRight(got[j], " ")) {
			j++
		}
		if j == len(got) {
			return fmt.Sprintf("no line matches %q (after the ones before it)", w)
		}
		j++
	}
	return ""
}

func TestMatchTranscript(t *testing.T) {
	got := []string{"a 1", "noise", "b 22 c", "d"}
	for _, tc := range []struct {
		want []string
		ok   bool
	}{
		{[]string{"a 1", "b ... c"}, true},
		{[]string{"a ...", "...", "d"}, true},
		{[]string{"b 22 c", "a 1"}, false},
		{[]string{"x"}, false},
		{nil, true},
	} {
		if msg := matchTranscript(tc.want, got); (msg == "") != tc.ok {
			t.Errorf("%q: %q", tc.want, msg)
		}
	}
}
