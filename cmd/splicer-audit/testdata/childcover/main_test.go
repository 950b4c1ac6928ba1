package main

import (
	"bufio"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv("CHILDCOVER_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestChildren runs one child of each kind. The environment the children
// inherit holds the GOCOVERDIR go test set.
func TestChildren(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"exit", "term", "kill"} {
		cmd := exec.Command(exe, how)
		cmd.Env = append(os.Environ(), "CHILDCOVER_MAIN=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		switch how {
		case "term":
			if line != "ready\n" {
				t.Fatalf("%s: %q", how, line)
			}
			cmd.Process.Signal(syscall.SIGTERM)
		case "kill":
			if line != "killed\n" {
				t.Fatalf("%s: %q", how, line)
			}
			cmd.Process.Kill()
		}
		err = cmd.Wait()
		t.Logf("%s: %v", how, err)
	}
}
